import { describe, expect, it } from "vitest";
import { childPaths, emptyGroup, fromConditions, NEW_RULE, toConditions, type Group, type Rule } from "../../console/src/condition-tree.js";
import { parseConditions } from "../../src/domain/segments/conditions.js";

const SEGMENT = "7d7c1c8e-2f7b-4c61-9a55-0d1f4b3a2e10";

/** Conditions the builder has a control for: editing a saved segment gives them back exactly as they were. */
const EDITABLE: [string, unknown][] = [
  ["a text field", { all: [{ field: "email", op: "ends_with", value: "@example.com" }] }],
  ["a list of texts", { all: [{ field: "company_id", op: "in", value: ["c1", "c2"] }] }],
  ["a number attribute (5, not \"5\")", { all: [{ field: "attributes.seats", op: "eq", value: 5 }] }],
  ["a text attribute that reads as a number", { all: [{ field: "attributes.zip", op: "eq", value: "75001" }] }],
  ["a boolean attribute", { all: [{ field: "attributes.trial", op: "neq", value: true }] }],
  ["a list of numbers", { all: [{ field: "attributes.tier", op: "not_in", value: [1, 2] }] }],
  ["a date window", { any: [{ field: "last_seen_at", op: "within_last", value: { amount: 2, unit: "week" } }] }],
  ["between two numbers", { all: [{ field: "attributes.score", op: "between", value: [10, 20] }] }],
  ["between two dates", { all: [{ field: "created_at", op: "between", value: ["2026-01-01", "2026-02-01"] }] }],
  ["exists", { all: [{ field: "attributes.plan", op: "exists" }] }],
  ["labels and segments", { all: [{ label: "VIP", op: "has_not" }, { segment: SEGMENT, op: "in" }] }],
  ["an event count in a window of hours", { all: [{ event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 }, within: { amount: 48, unit: "hour" } }] }],
  ["nested and negated groups", { any: [{ not: { all: [{ label: "a", op: "has" }, { label: "b", op: "has" }] } }, { all: [{ field: "name", op: "exists" }] }] }],
  ["a negated group at the top", { not: { any: [{ label: "a", op: "has" }] } }],
];

describe("console condition builder tree", () => {
  it.each(EDITABLE)("reads back %s exactly, with no condition left as raw JSON", (_name, conditions) => {
    expect(() => parseConditions(conditions), "the API accepts it").not.toThrow();
    const tree = fromConditions(conditions);
    const rules: Rule[] = [];
    const walk = (n: ReturnType<typeof fromConditions> | Rule): void => (n.type === "group" ? n.children.forEach(walk) : void rules.push(n));
    walk(tree);
    expect(rules.filter((r) => r.type === "json")).toEqual([]);
    expect(toConditions(tree)).toEqual(conditions);
  });

  it("keeps a condition it has no control for as written JSON, unchanged", () => {
    const odd = { all: [{ field: "attributes.zip", op: "in", value: ["a,b", "c"] }, { field: "email", op: "eq", value: 5 }, { weird: true }] };
    const tree = fromConditions(odd);
    expect(tree.children.map((c) => c.type)).toEqual(["json", "json", "json"]);
    expect(toConditions(tree)).toEqual(odd);
  });

  it("a single rule and no conditions at all read as a group", () => {
    expect(fromConditions(null)).toMatchObject({ type: "group", match: "all", children: [] });
    expect(toConditions(fromConditions(null))).toBeNull();
    expect(toConditions(fromConditions({ label: "x", op: "has" }))).toEqual({ all: [{ label: "x", op: "has" }] });
  });

  it("every new rule, once filled in, is conditions the API accepts", () => {
    const filled: Rule[] = [
      { ...NEW_RULE.field(), value: "ada" } as Rule,
      { ...NEW_RULE.attribute(), key: "plan", value: "pro" } as Rule,
      { ...NEW_RULE.label(), label: "VIP" } as Rule,
      { ...NEW_RULE.event(), event: "Signed Up", count: "2", within: "30" } as Rule,
      { ...NEW_RULE.segment(), segment: SEGMENT } as Rule,
    ];
    for (const rule of filled) expect(() => parseConditions(toConditions({ type: "group", match: "all", negate: false, children: [rule] }))).not.toThrow();
  });

  it("childPaths names where each child sits in the JSON, as the API's problems do (empty groups left out)", () => {
    const label = (name: string): Rule => ({ type: "label", label: name, op: "has" });
    const nested: Group = { type: "group", match: "any", negate: true, children: [label("x"), emptyGroup(), label("y")] };
    const root: Group = { type: "group", match: "all", negate: false, children: [emptyGroup(), label("a"), nested] };
    const json = toConditions(root) as any;
    expect(childPaths(root, "")).toEqual([null, "all.0", "all.1"]);
    expect(childPaths(nested, "all.1")).toEqual(["all.1.not.any.0", null, "all.1.not.any.1"]);
    const at = (path: string) => path.split(".").reduce((v, k) => v[k], json);
    expect(at("all.0")).toEqual({ label: "a", op: "has" });
    expect(at("all.1.not.any.1")).toEqual({ label: "y", op: "has" });
    // The API names the same place for a rule it refuses.
    let problems: { path: string }[] = [];
    try {
      parseConditions(toConditions({ ...root, children: [...root.children, { ...NEW_RULE.attribute() } as Rule] }));
    } catch (err) {
      problems = (err as { details: { problems: { path: string }[] } }).details.problems;
    }
    expect(problems.map((p) => p.path)).toEqual([`${childPaths({ ...root, children: [...root.children, NEW_RULE.attribute()] }, "")[3]}.field`]);
  });
});

import { useEffect, useState } from "preact/hooks";
import { api, type Segment } from "./api";
import { ErrorNote } from "./ui";

/** The builder's own tree; toConditions() turns it into the API's condition JSON. */
export type Node = Group | Rule;
export interface Group {
  type: "group";
  match: "all" | "any";
  negate: boolean;
  children: Node[];
}
export type Rule =
  | { type: "field"; field: string; op: string; value: string; unit: string }
  | { type: "attribute"; key: string; op: string; value: string; unit: string }
  | { type: "label"; label: string; op: "has" | "has_not" }
  | { type: "event"; event: string; op: "performed" | "not_performed"; countOp: string; count: string; withinDays: string }
  | { type: "segment"; segment: string; op: "in" | "not_in" };

const FIELDS = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "created_at", "updated_at", "last_seen_at"];
const OPS = ["eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "exists", "not_exists", "in", "not_in", "gt", "gte", "lt", "lte", "before", "after", "within_last", "more_than_ago"];
const UNITS = ["minute", "hour", "day", "week", "month"];
const NEW_RULE: Record<Rule["type"], () => Rule> = {
  field: () => ({ type: "field", field: "email", op: "contains", value: "", unit: "day" }),
  attribute: () => ({ type: "attribute", key: "", op: "eq", value: "", unit: "day" }),
  label: () => ({ type: "label", label: "", op: "has" }),
  event: () => ({ type: "event", event: "", op: "performed", countOp: "gte", count: "", withinDays: "" }),
  segment: () => ({ type: "segment", segment: "", op: "in" }),
};
const RULE_NAMES: Record<Rule["type"], string> = { field: "Field", attribute: "Attribute", label: "Label", event: "Event count", segment: "Segment" };

export const emptyGroup = (): Group => ({ type: "group", match: "all", negate: false, children: [] });

function value(op: string, raw: string, unit: string): unknown {
  if (op === "exists" || op === "not_exists") return undefined;
  if (op === "within_last" || op === "more_than_ago") return { amount: Number(raw) || 0, unit };
  if (op === "in" || op === "not_in") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (["gt", "gte", "lt", "lte"].includes(op) && raw.trim() !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  return raw;
}

/** The API's condition JSON for a tree, or null when the tree has no condition yet (everyone matches). */
export function toConditions(node: Node): unknown {
  switch (node.type) {
    case "group": {
      const kids = node.children.map(toConditions).filter((c) => c !== null);
      if (kids.length === 0) return null;
      const g = { [node.match]: kids };
      return node.negate ? { not: g } : g;
    }
    case "field":
    case "attribute": {
      const field = node.type === "field" ? node.field : `attributes.${node.key}`;
      const v = value(node.op, node.value, node.unit);
      return v === undefined ? { field, op: node.op } : { field, op: node.op, value: v };
    }
    case "label":
      return { label: node.label, op: node.op };
    case "event": {
      const c: Record<string, unknown> = { event: node.event, op: node.op };
      if (node.count.trim()) c.count = { op: node.countOp, value: Number(node.count) };
      if (node.withinDays.trim()) c.within = { amount: Number(node.withinDays), unit: "day" };
      return c;
    }
    case "segment":
      return { segment: node.segment, op: node.op };
  }
}

let ids = 0;
const nextId = () => `c${++ids}`;

/** Nested all/any/not groups of field, attribute, label, event-count and segment conditions. */
export function Builder({ value: root, onChange, segments }: { value: Group; onChange: (g: Group) => void; segments: Segment[] }) {
  return (
    <div class="builder">
      <GroupEditor group={root} onChange={onChange} segments={segments} depth={0} />
    </div>
  );
}

function GroupEditor({ group, onChange, segments, depth, onRemove }: { group: Group; onChange: (g: Group) => void; segments: Segment[]; depth: number; onRemove?: () => void }) {
  const [id] = useState(nextId);
  const set = (patch: Partial<Group>) => onChange({ ...group, ...patch });
  const setChild = (i: number, n: Node) => set({ children: group.children.map((c, j) => (j === i ? n : c)) });
  const remove = (i: number) => set({ children: group.children.filter((_, j) => j !== i) });
  const name = depth === 0 ? "people" : `group ${depth}`;
  return (
    <fieldset class="group">
      <legend>{depth === 0 ? "Conditions" : `Nested group (level ${depth})`}</legend>
      <label for={`${id}-match`}>Match {name} who meet</label>
      <select id={`${id}-match`} value={group.match} onChange={(e) => set({ match: e.currentTarget.value as Group["match"] })}>
        <option value="all">all of these</option>
        <option value="any">any of these</option>
      </select>
      <label class="inline">
        <input type="checkbox" checked={group.negate} onChange={(e) => set({ negate: e.currentTarget.checked })} /> Negate ({depth === 0 ? "people who do not" : "not"})
      </label>
      <ul>
        {group.children.map((c, i) => (
          <li key={i}>
            {c.type === "group" ? (
              <GroupEditor group={c} depth={depth + 1} segments={segments} onChange={(n) => setChild(i, n)} onRemove={() => remove(i)} />
            ) : (
              <RuleEditor rule={c} segments={segments} onChange={(n) => setChild(i, n)} onRemove={() => remove(i)} />
            )}
          </li>
        ))}
      </ul>
      <label for={`${id}-add`}>Add…</label>
      <select
        id={`${id}-add`}
        value=""
        onChange={(e) => {
          const t = e.currentTarget.value;
          if (t === "group") set({ children: [...group.children, emptyGroup()] });
          else if (t in NEW_RULE) set({ children: [...group.children, NEW_RULE[t as Rule["type"]]()] });
          e.currentTarget.value = "";
        }}
      >
        <option value="">choose a condition</option>
        {(Object.keys(NEW_RULE) as Rule["type"][]).map((t) => (
          <option key={t} value={t}>
            {RULE_NAMES[t]} condition
          </option>
        ))}
        <option value="group">Nested group</option>
      </select>
      {onRemove ? (
        <button type="button" onClick={onRemove}>
          Remove group
        </button>
      ) : null}
    </fieldset>
  );
}

function RuleEditor({ rule, onChange, onRemove, segments }: { rule: Rule; onChange: (r: Rule) => void; onRemove: () => void; segments: Segment[] }) {
  const set = (patch: Partial<Rule>) => onChange({ ...rule, ...patch } as Rule);
  const label = RULE_NAMES[rule.type];
  return (
    <div class="rule" role="group" aria-label={`${label} condition`}>
      {rule.type === "field" ? (
        <select aria-label="Field" value={rule.field} onChange={(e) => set({ field: e.currentTarget.value })}>
          {FIELDS.map((f) => (
            <option key={f}>{f}</option>
          ))}
        </select>
      ) : null}
      {rule.type === "attribute" ? <input aria-label="Attribute key" value={rule.key} onInput={(e) => set({ key: e.currentTarget.value })} /> : null}
      {rule.type === "field" || rule.type === "attribute" ? (
        <>
          <select aria-label="Operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value })}>
            {OPS.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
          {rule.op === "exists" || rule.op === "not_exists" ? null : (
            <input aria-label={rule.op === "in" || rule.op === "not_in" ? "Values, comma-separated" : "Value"} value={rule.value} onInput={(e) => set({ value: e.currentTarget.value })} />
          )}
          {rule.op === "within_last" || rule.op === "more_than_ago" ? (
            <select aria-label="Unit" value={rule.unit} onChange={(e) => set({ unit: e.currentTarget.value })}>
              {UNITS.map((u) => (
                <option key={u}>{u}</option>
              ))}
            </select>
          ) : null}
        </>
      ) : null}
      {rule.type === "label" ? (
        <>
          <select aria-label="Label operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value as "has" })}>
            <option value="has">has label</option>
            <option value="has_not">has not label</option>
          </select>
          <input aria-label="Label name" value={rule.label} onInput={(e) => set({ label: e.currentTarget.value })} />
        </>
      ) : null}
      {rule.type === "event" ? (
        <>
          <input aria-label="Event name" value={rule.event} onInput={(e) => set({ event: e.currentTarget.value })} />
          <select aria-label="Event operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value as "performed" })}>
            <option value="performed">performed</option>
            <option value="not_performed">not performed</option>
          </select>
          <select aria-label="Count comparison" value={rule.countOp} onChange={(e) => set({ countOp: e.currentTarget.value })}>
            {["gte", "gt", "eq", "lte", "lt"].map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
          <input aria-label="Times (optional)" inputMode="numeric" value={rule.count} onInput={(e) => set({ count: e.currentTarget.value })} />
          <input aria-label="Within the last days (optional)" inputMode="numeric" value={rule.withinDays} onInput={(e) => set({ withinDays: e.currentTarget.value })} />
        </>
      ) : null}
      {rule.type === "segment" ? (
        <>
          <select aria-label="Segment operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value as "in" })}>
            <option value="in">in segment</option>
            <option value="not_in">not in segment</option>
          </select>
          <select aria-label="Segment" value={rule.segment} onChange={(e) => set({ segment: e.currentTarget.value })}>
            <option value="">choose a segment</option>
            {segments.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </>
      ) : null}
      <button type="button" onClick={onRemove} aria-label={`Remove ${label.toLowerCase()} condition`}>
        Remove
      </button>
    </div>
  );
}

/** The live match count of a tree (POST /v1/segments/preview), debounced; the API's message when it refuses the tree. */
export function MatchCount({ conditions }: { conditions: unknown }) {
  const [state, setState] = useState<{ count?: number; error?: unknown; busy: boolean }>({ busy: true });
  const key = JSON.stringify(conditions);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, busy: true }));
    const t = setTimeout(() => {
      api("post", "/v1/segments/preview", { body: { conditions: conditions ?? { all: [] } } }).then(
        (r) => live && setState({ count: r.count, busy: false }),
        (error) => live && setState({ error, busy: false }),
      );
    }, 300);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [key]);
  return (
    <div class="match-count">
      <p role="status" aria-live="polite">
        {state.error ? "No count: see the message below." : state.count === undefined ? "Counting…" : `${state.count} ${state.count === 1 ? "person matches" : "people match"}${state.busy ? " (updating…)" : ""}`}
      </p>
      <ErrorNote error={state.error} />
    </div>
  );
}

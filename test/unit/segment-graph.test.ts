import { describe, expect, it } from "vitest";
import { dependencyOrder, findCycle, type SegmentGraph } from "../../src/domain/segments/graph.js";

function graph(edges: Record<string, string[]>): SegmentGraph {
  return new Map(Object.entries(edges).map(([id, dependsOn]) => [id, { id, name: id.toUpperCase(), type: "dynamic" as const, dependsOn }]));
}

describe("findCycle", () => {
  it("returns the path back to the start when there is one", () => {
    const g = graph({ a: ["c"], b: ["a"], c: ["b"], d: [] });
    expect(findCycle(g, "a")).toEqual(["a", "c", "b", "a"]);
  });

  it("finds a self-reference", () => {
    expect(findCycle(graph({ a: ["a"] }), "a")).toEqual(["a", "a"]);
  });

  it("returns null for a diamond (shared dependencies are not cycles)", () => {
    const g = graph({ top: ["l", "r"], l: ["base"], r: ["base"], base: [] });
    expect(findCycle(g, "top")).toBeNull();
  });
});

describe("dependencyOrder", () => {
  it("puts every segment after the segments it uses", () => {
    const g = graph({ d: ["c", "a"], c: ["b"], b: ["a"], a: [], e: [] });
    const order = dependencyOrder(g, ["d", "e", "c", "b", "a"]);
    expect(order).toHaveLength(5);
    for (const [id, node] of g) for (const dep of node.dependsOn) expect(order.indexOf(dep)).toBeLessThan(order.indexOf(id));
  });
});

import { describe, expect, it } from "vitest";

import type { GraphDocument, NodeReport } from "../api/types";
import { graphAt, setParam } from "../graph/ops";
import { CATALOG } from "../test/catalog";
import { deriveEdges, deriveNodes } from "./flow";

const DOC: GraphDocument = {
  format: "shipyard.graph/v1",
  nodes: [
    { id: "x", type: "Input", params: { shape: [64] } },
    { id: "res", type: "Add" },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "res.a" }, { from: "x", to: "res.b" }, { from: "res", to: "y" }],
  layout: { x: [0, 0], res: [200, 0] },
};

const REPORTS = {
  x: { type: "Input", status: "ok", inputs: {}, outputs: { out: { shape: ["B", 64], dtype: "float32" } }, params: 0 },
  res: { type: "Add", status: "ok", inputs: {}, outputs: { out: { shape: ["B", 64], dtype: "float32" } }, params: 0 },
} as unknown as Record<string, NodeReport>;

describe("graph to canvas", () => {
  it("places nodes from the layout (and lays out those without a place) with their ports", () => {
    const nodes = deriveNodes(graphAt(DOC, []), [], CATALOG, REPORTS, new Map(), new Set(["res"]), false, new Map());
    expect(nodes.map((n) => [n.id, n.position])).toEqual([
      ["x", { x: 0, y: 0 }], ["res", { x: 200, y: 0 }], ["y", { x: 440, y: 0 }],
    ]);
    expect(nodes[1].selected).toBe(true);
    expect(nodes[1].data.block?.inputs).toEqual(["a", "b"]);
  });

  it("puts ports on the top and bottom of a graph that runs down, and places the unplaced below", () => {
    const down = { ...DOC, layout: { x: [0, 0], res: [0, 120] } } as GraphDocument;
    const nodes = deriveNodes(graphAt(down, []), [], CATALOG, REPORTS, new Map(), new Set(), false, new Map());
    expect(nodes.map((n) => n.data.vertical)).toEqual([true, true, true]);
    expect(nodes[2].position).toEqual({ x: 0, y: 240 });
    const across = deriveNodes(graphAt(DOC, []), [], CATALOG, REPORTS, new Map(), new Set(), false, new Map());
    expect(across[0].data.vertical).toBe(false);
  });

  it("labels every edge with the shape its source gives, on the right ports", () => {
    const edges = deriveEdges(graphAt(DOC, []), CATALOG, REPORTS, new Set(), new Map());
    expect(edges.map((e) => [e.id, e.sourceHandle, e.targetHandle, e.data?.label])).toEqual([
      ["x->res.a", "out", "a", "[B, 64]"],
      ["x->res.b", "out", "b", "[B, 64]"],
      ["res->y", "out", "in", "[B, 64]"],
    ]);
  });

  it("reuses the objects of nodes an edit did not touch", () => {
    const g = graphAt(DOC, []);
    const first = deriveNodes(g, [], CATALOG, REPORTS, new Map(), new Set(), false, new Map());
    const previous = new Map(first.map((n) => [n.id, n]));
    const edited = setParam(DOC, [], "res", "note", 1);
    const second = deriveNodes(graphAt(edited, []), [], CATALOG, REPORTS, new Map(), new Set(), false, previous);
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
    expect(second[2]).toBe(first[2]);
  });

  it("marks a Repeat's problems inside it on the Repeat and names attention modules by copy", () => {
    const doc: GraphDocument = {
      format: "shipyard.graph/v1",
      nodes: [{ id: "blocks", type: "Repeat", graph: { nodes: [{ id: "attn", type: "Linear" }], edges: [] } }],
      edges: [],
    };
    const nodes = deriveNodes(graphAt(doc, ["blocks"]), ["blocks"], CATALOG, {}, new Map(), new Set(), false, new Map());
    expect(nodes[0].data.module).toBe("blocks.0.attn");
    const outer = deriveNodes(graphAt(doc, []), [], CATALOG, {}, new Map([["blocks", [{ message: "bad", node: "blocks/attn", field: null }]]]), new Set(), false, new Map());
    expect(outer[0].type).toBe("repeat");
    expect(outer[0].data.problems?.[0].message).toBe("bad");
  });
});

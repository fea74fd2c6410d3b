import { describe, expect, it } from "vitest";

import type { GraphDocument } from "../api/types";
import { graphAt } from "../graph/ops";
import { CATALOG } from "../test/catalog";
import { autoLayout, autoLayoutAll, layoutDirection } from "./layout";

const CHAIN: GraphDocument = {
  format: "shipyard.graph/v1",
  nodes: [
    { id: "x", type: "Input", params: { shape: [64] } },
    { id: "hidden", type: "Linear" },
    { id: "act", type: "ReLU" },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "hidden" }, { from: "hidden", to: "act" }, { from: "act", to: "y" }],
  layout: { x: [0, 0], hidden: [220, 0], act: [440, 0], y: [660, 0] },
};

describe("auto-layout", () => {
  it("lays a chain out top to bottom, in one column", () => {
    const laid = autoLayout(CHAIN, [], CATALOG).layout!;
    const ys = ["x", "hidden", "act", "y"].map((id) => laid[id][1]);
    expect(ys).toEqual([...ys].sort((a, b) => a - b));
    expect(new Set(ys).size).toBe(4);
    expect(new Set(["x", "hidden", "act", "y"].map((id) => laid[id][0])).size).toBe(1);
  });

  it("spaces layers by the blocks' drawn heights when it has them", () => {
    const tall = new Map([["x", { width: 184, height: 300 }]]);
    const laid = autoLayout(CHAIN, [], CATALOG, tall).layout!;
    expect(laid.hidden[1] - laid.x[1]).toBeGreaterThanOrEqual(300);
  });

  it("lays out the graphs inside Repeats too", () => {
    const doc: GraphDocument = {
      ...CHAIN,
      nodes: [...CHAIN.nodes, {
        id: "blocks", type: "Repeat",
        graph: { nodes: [{ id: "x", type: "Input" }, { id: "y", type: "Output" }], edges: [{ from: "x", to: "y" }],
          layout: { x: [0, 0], y: [300, 0] } },
      }],
    };
    const inner = graphAt(autoLayoutAll(doc, CATALOG), ["blocks"]).layout!;
    expect(inner.y[1]).toBeGreaterThan(inner.x[1]);
  });
});

describe("which way a graph runs", () => {
  it("is across for a graph laid out in a row, down once laid out", () => {
    expect(layoutDirection(CHAIN, CATALOG)).toBe("LR");
    expect(layoutDirection(autoLayout(CHAIN, [], CATALOG), CATALOG)).toBe("TB");
  });

  it("is down for a graph with no edges or no places", () => {
    expect(layoutDirection({ ...CHAIN, edges: [] }, CATALOG)).toBe("TB");
    expect(layoutDirection({ ...CHAIN, layout: undefined }, CATALOG)).toBe("TB");
  });
});

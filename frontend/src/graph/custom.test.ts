import { describe, expect, it } from "vitest";

import type { CustomBlock, GraphDocument, GraphNode } from "../api/types";
import { matchBlocks } from "../editor/QuickAdd";
import { CATALOG, SERVED } from "../test/catalog";
import { customLabel, insertCustom, insideCustom, isShareSource, offeredUpdate, replaceCustom, shareTokenOf, updateChanges } from "./custom";
import { connectionProblem, graphAt, parseEndpoint, portsOf } from "./ops";

function mlpCopy(width = 12, second = true): NonNullable<GraphNode["graph"]> {
  return {
    nodes: [
      { id: "a", type: "Input", params: { shape: [8] } },
      { id: "b", type: "Input", params: { shape: [8] } },
      { id: "s", type: "Add" },
      { id: "lin", type: "Linear", params: { out_features: width } },
      { id: "hidden", type: "Output" },
      ...(second ? [{ id: "gate", type: "Output" } as GraphNode] : []),
    ],
    edges: [{ from: "a", to: "s.a" }, { from: "b", to: "s.b" }, { from: "s", to: "lin" },
      { from: "lin", to: "hidden" }, ...(second ? [{ from: "s", to: "gate" }] : [])],
  };
}

function custom(version = 3, graph = mlpCopy()): GraphNode {
  return { id: "ffn", type: "Custom", params: { source: "12", version, name: "Mlp" }, graph } as GraphNode;
}

function model(): GraphDocument {
  return {
    format: "shipyard.graph/v1", name: "uses",
    nodes: [{ id: "x", type: "Input", params: { shape: [8] } }, custom(), { id: "y", type: "Output" },
      { id: "z", type: "Output" }],
    edges: [{ from: "x", to: "ffn.a" }, { from: "x", to: "ffn.b" }, { from: "ffn.hidden", to: "y" },
      { from: "ffn.gate", to: "z" }],
    layout: {},
  };
}

function served(version: number, graph: NonNullable<GraphNode["graph"]>, outputs: [string, number][]): CustomBlock {
  return {
    node: { type: "Custom", params: { source: "12", version, name: "Mlp" }, graph },
    name: "Mlp", version, latest: version, usable: true, problem: null, params: 0,
    inputs: [{ id: "a", shape: ["B", 8], dtype: "float32" }, { id: "b", shape: ["B", 8], dtype: "float32" }],
    outputs: outputs.map(([id, width]) => ({ id, shape: ["B", width], dtype: "float32" })),
  };
}

describe("blocks from My blocks", () => {
  it("have the Inputs and Outputs of the graph they hold as ports, in listed order", () => {
    const node = custom();
    expect(portsOf(node, CATALOG, "inputs")).toEqual(["a", "b"]);
    expect(portsOf(node, CATALOG, "outputs")).toEqual(["hidden", "gate"]);
    expect(parseEndpoint("ffn.gate", model(), CATALOG, "outputs")).toEqual({ node: "ffn", port: "gate" });
    expect(connectionProblem(model(), { node: "x", port: "out" }, { node: "ffn", port: "c" }, CATALOG))
      .toMatch(/no input c/);
  });

  it("are labelled by name and pinned version", () => {
    expect(customLabel(custom(3))).toBe("Mlp v3");
  });

  it("are never offered by the catalog's search: they come from saved graphs", () => {
    expect(matchBlocks(SERVED.blocks, "").some((b) => b.type === "Custom")).toBe(false);
  });

  it("are read-only inside: their graph is a copy of a saved version", () => {
    const doc = model();
    expect(insideCustom(doc, [])).toBeNull();
    expect(insideCustom(doc, ["ffn"])?.id).toBe("ffn");
  });

  it("are inserted with an id from their name and their pinned copy", () => {
    const { doc, id } = insertCustom(model(), [], served(4, mlpCopy(), []).node, [10, 20], CATALOG);
    expect(id).toBe("mlp1");
    const node = graphAt(doc, []).nodes.find((n) => n.id === id)!;
    expect(node.graph?.nodes.map((n) => n.id)).toEqual(["a", "b", "s", "lin", "hidden", "gate"]);
    expect(doc.layout?.mlp1).toEqual([10, 20]);
  });
});

describe("updating a block to a newer version", () => {
  it("shows each port's shape before and after, new and gone ports included", () => {
    const now = {
      inputs: { a: { shape: ["B", 8], dtype: "float32" }, b: { shape: ["B", 8], dtype: "float32" } },
      outputs: { hidden: { shape: ["B", 12], dtype: "float32" }, gate: { shape: ["B", 8], dtype: "float32" } },
    } as never;
    const rows = updateChanges(custom(), now, served(4, mlpCopy(16, false), [["hidden", 16], ["extra", 3]]));
    expect(rows).toEqual([
      { side: "input", port: "a", before: "[B, 8]", after: "[B, 8]", changed: false },
      { side: "input", port: "b", before: "[B, 8]", after: "[B, 8]", changed: false },
      { side: "output", port: "hidden", before: "[B, 12]", after: "[B, 16]", changed: true },
      { side: "output", port: "gate", before: "[B, 8]", after: null, changed: true },
      { side: "output", port: "extra", before: null, after: "[B, 3]", changed: true },
    ]);
  });

  it("replaces the node in place and drops the edges of ports that are gone", () => {
    const next = replaceCustom(model(), [], "ffn", served(4, mlpCopy(16, false), [["hidden", 16]]).node);
    const node = next.nodes.find((n) => n.id === "ffn")!;
    expect((node.params as { version: number }).version).toBe(4);
    expect(next.edges.map((e) => `${e.from}->${e.to}`)).toEqual(["x->ffn.a", "x->ffn.b", "ffn.hidden->y"]);
    expect(next.nodes.map((n) => n.id)).toEqual(["x", "ffn", "y", "z"]);
  });
});

describe("the editor store", () => {
  it("refuses edits inside a block's copy, with a notice saying what to do", async () => {
    const { createEditorStore } = await import("../store/editor");
    const store = createEditorStore();
    store.getState().setCatalog(SERVED);
    store.getState().load(model(), {});
    store.getState().enter("ffn");
    expect(store.getState().scope).toEqual(["ffn"]);
    expect(store.getState().addBlock("ReLU", [0, 0])).toBeNull();
    expect(store.getState().notice?.text).toMatch(/copy of Mlp v3/);
    expect(graphAt(store.getState().doc, ["ffn"]).nodes).toHaveLength(6);
  });
});

describe("module paths inside blocks", () => {
  it("have no copy index for a block from My blocks, one for a Repeat", async () => {
    const { modulePath, scopeRepeats } = await import("./report");
    const doc = model();
    expect(scopeRepeats(doc, ["ffn"])).toEqual([false]);
    expect(modulePath(["ffn"], "lin", scopeRepeats(doc, ["ffn"]))).toBe("ffn.lin");
    expect(modulePath(["blocks"], "attn")).toBe("blocks.0.attn");
  });
});

describe("shareTokenOf", () => {
  it("reads the token from the share page's URL, the fork URL, the API URL and a bare token", () => {
    expect(shareTokenOf("https://shipyard.example/s/Ab3_x-9")).toBe("Ab3_x-9");
    expect(shareTokenOf("  http://localhost:8000/s/tok/  ")).toBe("tok");
    expect(shareTokenOf("https://shipyard.example/s/tok/fork")).toBe("tok");
    expect(shareTokenOf("https://shipyard.example/api/shared/tok")).toBe("tok");
    expect(shareTokenOf("/s/tok?ref=mail#top")).toBe("tok");
    expect(shareTokenOf("Ab3_x-9")).toBe("Ab3_x-9");
    expect(shareTokenOf("a".repeat(64))).toBe("a".repeat(64));
  });

  it("refuses anything that is not a well-formed token, so the API never sees it", () => {
    for (const bad of [
      "", "   ", "a".repeat(65), "tok en", "tok%2F..", "../tok", "share:tok", "tok&version=1",
      "https://shipyard.example/s/", "https://shipyard.example/g/12", "https://shipyard.example/s/a/b",
      "https://shipyard.example/s/%3Cscript%3E", "https://shipyard.example/s/" + "a".repeat(65),
      "javascript:alert(1)//s/tok", "data:text/html,/s/tok", "<img src=x onerror=alert(1)>", "tok\nen",
      "https://shipyard.example/s/tok\u0000", "\u0000https://shipyard.example/s/tok", "ｔｏｋ",
    ]) {
      expect(shareTokenOf(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});

describe("offeredUpdate", () => {
  it("offers only a newer latest version", () => {
    expect(offeredUpdate(2, 5)).toBe(5);
    expect(offeredUpdate(5, 5)).toBeNull();
    expect(offeredUpdate(6, 5)).toBeNull();
    expect(offeredUpdate(2, null)).toBeNull(); // not fetched yet
    expect(offeredUpdate(undefined, 5)).toBeNull(); // not pinned
  });

  it("tells shared sources from own ones", () => {
    expect(isShareSource("share:tok")).toBe(true);
    expect(isShareSource("12")).toBe(false);
  });
});

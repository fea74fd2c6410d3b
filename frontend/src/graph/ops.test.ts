import { describe, expect, it } from "vitest";

import type { GraphDocument } from "../api/types";
import { CATALOG, SERVED } from "../test/catalog";
import {
  EditError, addNode, blankDocument, canonical, connect, connectionProblem, copyFragment, followPorts, graphAt,
  idProblem, isFragment, makeCatalog, makeRepeat, parseEndpoint, pasteFragment, removeNodes, renameNode, setParam,
  shareUnchanged,
} from "./ops";

function mlp(): GraphDocument {
  return {
    format: "shipyard.graph/v1", name: "mlp",
    nodes: [
      { id: "x", type: "Input", params: { shape: [64] } },
      { id: "hidden", type: "Linear", params: { out_features: 32 } },
      { id: "act", type: "ReLU" },
      { id: "y", type: "Output" },
    ],
    edges: [{ from: "x", to: "hidden" }, { from: "hidden", to: "act" }, { from: "act", to: "y" }],
    layout: { x: [0, 0], hidden: [220, 0], act: [440, 0], y: [660, 0] },
  };
}

describe("adding and removing blocks", () => {
  it("gives new blocks the first free id of their type and a place", () => {
    let doc = blankDocument();
    const first = addNode(doc, [], "Linear", [10, 20], CATALOG);
    doc = first.doc;
    const second = addNode(doc, [], "Linear", [30, 40], CATALOG);
    expect(first.id).toBe("linear1");
    expect(second.id).toBe("linear2");
    expect(second.doc.layout).toEqual({ linear1: [10, 20], linear2: [30, 40] });
  });

  it("names new blocks from the stem the catalog serves for each type", () => {
    for (const block of SERVED.blocks) {
      expect(addNode(blankDocument(), [], block.type, [0, 0], CATALOG).id).toBe(`${block.id_stem}1`);
    }
    expect(addNode(blankDocument(), [], "MultiHeadAttention", [0, 0], CATALOG).id).toBe("attn1");
    const renamed = makeCatalog({
      ...SERVED, blocks: SERVED.blocks.map((b) => (b.type === "Linear" ? { ...b, id_stem: "fc" } : b)),
    });
    expect(addNode(blankDocument(), [], "Linear", [0, 0], renamed).id).toBe("fc1");
  });

  it("skips fresh ids that the catalog reserves", () => {
    const strict = makeCatalog({ ...SERVED, reserved_ids: [...SERVED.reserved_ids, "linear1"] });
    expect(addNode(blankDocument(), [], "Linear", [0, 0], strict).id).toBe("linear2");
  });

  it("starts a top-level Input with a shape and a Repeat with a body of its own", () => {
    const withInput = addNode(blankDocument(), [], "Input", [0, 0], CATALOG);
    expect(withInput.doc.nodes[0].params).toEqual({ shape: [64] });
    const withRepeat = addNode(blankDocument(), [], "Repeat", [0, 0], CATALOG);
    expect(withRepeat.doc.nodes[0].graph?.nodes.map((n) => n.type)).toEqual(["Input", "Output"]);
    // inside a Repeat the shape comes from outside
    const inside = addNode(withRepeat.doc, ["blocks1"], "Input", [0, 0], CATALOG);
    expect(graphAt(inside.doc, ["blocks1"]).nodes.at(-1)?.params).toBeUndefined();
  });

  it("removes a block with its edges and its place, and leaves the old document alone", () => {
    const doc = mlp();
    const before = canonical(doc);
    const next = removeNodes(doc, [], ["hidden"], CATALOG);
    expect(next.nodes.map((n) => n.id)).toEqual(["x", "act", "y"]);
    expect(next.edges).toEqual([{ from: "act", to: "y" }]);
    expect(next.layout?.hidden).toBeUndefined();
    expect(canonical(doc)).toBe(before);
  });
});

describe("connections", () => {
  it("writes the port only where the block has several", () => {
    let doc = mlp();
    doc = addNode(doc, [], "Add", [0, 100], CATALOG).doc;
    doc = connect(doc, [], { node: "act", port: "out" }, { node: "add1", port: "b" }, CATALOG);
    expect(doc.edges.at(-1)).toEqual({ from: "act", to: "add1.b" });
  });

  it("refuses an input port that already has an edge, a cycle and a self-loop, saying why", () => {
    const doc = addNode(mlp(), [], "Linear", [0, 0], CATALOG).doc;
    const g = graphAt(doc, []);
    expect(connectionProblem(g, { node: "linear1", port: "out" }, { node: "hidden", port: "in" }, CATALOG))
      .toMatch(/already has an input/);
    expect(connectionProblem(g, { node: "act", port: "out" }, { node: "linear1", port: "in" }, CATALOG)).toBeNull();
    const wired = connect(doc, [], { node: "act", port: "out" }, { node: "linear1", port: "in" }, CATALOG);
    const g2 = graphAt(wired, []);
    expect(connectionProblem(g2, { node: "linear1", port: "out" }, { node: "act", port: "in" }, CATALOG)).toMatch(/already has an input|cycle/);
    expect(connectionProblem(g2, { node: "act", port: "out" }, { node: "act", port: "in" }, CATALOG)).toMatch(/itself/);
    expect(() => connect(doc, [], { node: "linear1", port: "out" }, { node: "hidden", port: "in" }, CATALOG)).toThrow(EditError);
  });

  it("finds a cycle through a free port", () => {
    let doc = mlp();
    doc = addNode(doc, [], "Add", [0, 0], CATALOG).doc;
    doc = connect(doc, [], { node: "act", port: "out" }, { node: "add1", port: "a" }, CATALOG);
    const g = graphAt(doc, []);
    expect(connectionProblem(g, { node: "add1", port: "out" }, { node: "add1", port: "b" }, CATALOG)).toMatch(/itself/);
    doc = addNode(doc, [], "Linear", [0, 0], CATALOG).doc;
    doc = connect(doc, [], { node: "add1", port: "out" }, { node: "linear1", port: "in" }, CATALOG);
    expect(connectionProblem(graphAt(doc, []), { node: "linear1", port: "out" }, { node: "add1", port: "b" }, CATALOG)).toMatch(/cycle/);
  });
});

describe("a block whose output ports come from a parameter (Split)", () => {
  function split(): GraphDocument {
    let doc = mlp();
    doc = addNode(doc, [], "Split", [0, 100], CATALOG).doc;
    doc = addNode(doc, [], "Add", [0, 200], CATALOG).doc;
    return connect(doc, [], { node: "hidden", port: "out" }, { node: "split1", port: "in" }, CATALOG);
  }

  it("is served with its ports named by names", () => {
    expect(CATALOG.blocks.Split.outputs_from).toBe("names");
    expect(CATALOG.blocks.Split.outputs).toEqual(["a", "b"]);
    expect(CATALOG.blocks.Linear.outputs_from).toBeNull();
  });

  it("writes the port on every edge that leaves it, as a source of several", () => {
    let doc = split();
    doc = connect(doc, [], { node: "split1", port: "b" }, { node: "add1", port: "a" }, CATALOG);
    expect(doc.edges.at(-1)).toEqual({ from: "split1.b", to: "add1.a" });
    expect(parseEndpoint("split1.b", graphAt(doc, []), CATALOG, "outputs")).toEqual({ node: "split1", port: "b" });
  });

  it("takes edges from the ports its names give, and refuses the others", () => {
    const doc = setParam(split(), [], "split1", "names", ["q", "k", "v"], CATALOG);
    const graph = graphAt(doc, []);
    expect(connectionProblem(graph, { node: "split1", port: "v" }, { node: "add1", port: "a" }, CATALOG)).toBeNull();
    expect(connectionProblem(graph, { node: "split1", port: "a" }, { node: "add1", port: "a" }, CATALOG))
      .toBe("split1 has no output a");
  });

  it("moves the edges of renamed ports, keeps those of kept names, removes those of names gone", () => {
    let doc = split();
    doc = connect(doc, [], { node: "split1", port: "a" }, { node: "add1", port: "a" }, CATALOG);
    doc = connect(doc, [], { node: "split1", port: "b" }, { node: "add1", port: "b" }, CATALOG);
    doc = setParam(doc, [], "split1", "names", ["q", "k", "v"], CATALOG);
    expect(doc.edges.slice(-2)).toEqual([{ from: "split1.q", to: "add1.a" }, { from: "split1.k", to: "add1.b" }]);
    doc = setParam(doc, [], "split1", "names", ["q", "v"], CATALOG);
    expect(doc.edges.slice(-1)).toEqual([{ from: "split1.q", to: "add1.a" }]);
    doc = setParam(doc, [], "split1", "names", undefined, CATALOG);  // back to the default a, b
    expect(doc.edges.slice(-1)).toEqual([{ from: "split1.a", to: "add1.a" }]);
    expect(doc.edges[0]).toEqual({ from: "x", to: "hidden" });  // other edges are left alone
  });

  it("follows names position by position only where the new name is new", () => {
    expect([...followPorts(["a", "b"], ["q", "k"])]).toEqual([["a", "q"], ["b", "k"]]);
    expect([...followPorts(["q", "k", "v"], ["q", "v"])]).toEqual([["q", "q"], ["v", "v"]]);
    expect([...followPorts(["q", "k"], ["k", "q"])]).toEqual([["q", "q"], ["k", "k"]]);
  });

  it("leaves edges alone when another parameter changes", () => {
    let doc = split();
    doc = connect(doc, [], { node: "split1", port: "a" }, { node: "add1", port: "a" }, CATALOG);
    const edges = doc.edges;
    expect(setParam(doc, [], "split1", "dim", 1, CATALOG).edges).toEqual(edges);
  });
});

describe("parameters and names", () => {
  it("sets a parameter and removes it to fall back to the default", () => {
    const doc = setParam(mlp(), [], "act", "inplace", true);
    expect(doc.nodes[2].params).toEqual({ inplace: true });
    expect(setParam(doc, [], "act", "inplace", undefined).nodes[2].params).toBeUndefined();
  });

  it("renames a node everywhere: edges, ports and layout", () => {
    let doc = addNode(mlp(), [], "Add", [0, 0], CATALOG).doc;
    doc = connect(doc, [], { node: "act", port: "out" }, { node: "add1", port: "a" }, CATALOG);
    doc = renameNode(doc, [], "add1", "residual", CATALOG);
    doc = renameNode(doc, [], "act", "gelu", CATALOG);
    expect(doc.edges).toContainEqual({ from: "gelu", to: "residual.a" });
    expect(doc.edges).toContainEqual({ from: "hidden", to: "gelu" });
    expect(doc.layout?.residual).toBeDefined();
    expect(doc.layout?.add1).toBeUndefined();
  });

  it("refuses ids that break generated code or are taken", () => {
    const g = graphAt(mlp(), []);
    expect(idProblem("2fast", g, CATALOG)).toMatch(/starts with a letter/);
    expect(idProblem("x".repeat(65), g, CATALOG)).toMatch(/at most 64/);
    expect(idProblem("class", g, CATALOG)).toMatch(/reserved/);
    expect(idProblem("training", g, CATALOG)).toMatch(/reserved/);
    expect(idProblem("act", g, CATALOG)).toMatch(/taken/);
    expect(idProblem("act", g, CATALOG, "act")).toBeNull();
    expect(idProblem("head", g, CATALOG)).toBeNull();
    expect(() => renameNode(mlp(), [], "act", "hidden", CATALOG)).toThrow(/taken/);
  });

  it("refuses every id the engine reserves, as the catalog serves them", () => {
    const g = graphAt(mlp(), []);
    // add_module and apply were missing from the editor's own list before the catalog served it
    expect(SERVED.reserved_ids).toEqual(expect.arrayContaining(["class", "self", "add_module", "apply"]));
    for (const id of SERVED.reserved_ids.filter((r) => CATALOG.idPattern.test(r))) {
      expect(idProblem(id, g, CATALOG)).toMatch(/reserved/);
    }
    expect(() => renameNode(mlp(), [], "act", "apply", CATALOG)).toThrow(/reserved/);
    const short = makeCatalog({ ...SERVED, id_pattern: "^[a-z]{1,3}$" });
    expect(idProblem("head", g, short)).toMatch(/starts with a letter/);
  });
});

describe("copy and paste", () => {
  it("copies the selected blocks with the edges between them as a graph document", () => {
    const fragment = copyFragment(mlp(), [], ["hidden", "act"], CATALOG);
    expect(isFragment(JSON.parse(JSON.stringify(fragment)))).toBe(true);
    expect(fragment.nodes.map((n) => n.id)).toEqual(["hidden", "act"]);
    expect(fragment.edges).toEqual([{ from: "hidden", to: "act" }]);
  });

  it("pastes with fresh ids where they are taken, keeping the inner edges", () => {
    const doc = mlp();
    const fragment = copyFragment(doc, [], ["hidden", "act"], CATALOG);
    const { doc: pasted, ids } = pasteFragment(doc, [], fragment, [0, 100], CATALOG);
    expect(ids).toEqual(["hidden1", "act1"]);
    expect(pasted.edges.at(-1)).toEqual({ from: "hidden1", to: "act1" });
    expect(pasted.layout?.hidden1).toEqual([220, 100]);
  });

  it("refuses a pasted block type it does not know", () => {
    const fragment = { format: "shipyard.graph/v1", nodes: [{ id: "q", type: "Quantum" }], edges: [] } as unknown as GraphDocument;
    expect(() => pasteFragment(mlp(), [], fragment, [0, 0], CATALOG)).toThrow(/Quantum/);
  });

  it("does not take arbitrary JSON for a fragment", () => {
    expect(isFragment({ nodes: [] })).toBe(false);
    expect(isFragment("text")).toBe(false);
    expect(isFragment({ format: "shipyard.graph/v1", nodes: [{ id: 1 }], edges: [] })).toBe(false);
  });
});

describe("Repeat", () => {
  it("wraps a chain section into a Repeat ×1 that takes its place", () => {
    const { doc, id } = makeRepeat(mlp(), [], ["hidden", "act"], CATALOG);
    expect(id).toBe("blocks1");
    const repeat = doc.nodes.find((n) => n.id === id)!;
    expect(repeat.params).toEqual({ times: 1 });
    expect(repeat.graph!.nodes.map((n) => n.id)).toEqual(["x", "hidden", "act", "y"]);
    expect(repeat.graph!.edges).toEqual([
      { from: "x", to: "hidden" }, { from: "hidden", to: "act" }, { from: "act", to: "y" },
    ]);
    expect(doc.edges).toEqual([{ from: "x", to: "blocks1" }, { from: "blocks1", to: "y" }]);
    expect(graphAt(doc, ["blocks1"])).toBe(repeat.graph);
  });

  it("refuses a selection with two ways in, naming the count", () => {
    let doc = addNode(mlp(), [], "Add", [0, 0], CATALOG).doc;
    doc = connect(doc, [], { node: "x", port: "out" }, { node: "add1", port: "a" }, CATALOG);
    doc = connect(doc, [], { node: "act", port: "out" }, { node: "add1", port: "b" }, CATALOG);
    expect(() => makeRepeat(doc, [], ["add1"], CATALOG)).toThrow(/fed by 2 outputs/);
    expect(() => makeRepeat(doc, [], ["x"], CATALOG)).toThrow(/Input or Output/);
  });

  it("edits inside a Repeat without touching the outside", () => {
    const { doc } = makeRepeat(mlp(), [], ["hidden", "act"], CATALOG);
    const inner = setParam(doc, ["blocks1"], "hidden", "out_features", 99);
    expect(graphAt(inner, ["blocks1"]).nodes[1].params).toEqual({ out_features: 99 });
    expect(inner.edges).toBe(doc.edges);
  });
});

describe("shareUnchanged", () => {
  it("keeps the objects of every part a new copy did not change", () => {
    const prev = mlp();
    const next: GraphDocument = JSON.parse(JSON.stringify(prev));
    next.nodes[1].params = { out_features: 64 };
    next.nodes.push({ id: "z", type: "ReLU" });
    const shared = shareUnchanged(prev, next);
    expect(shared).toEqual(next);
    expect(shared).not.toBe(prev);
    expect(shared.nodes[0]).toBe(prev.nodes[0]);
    expect(shared.nodes[1]).not.toBe(prev.nodes[1]);
    expect(shared.nodes[2]).toBe(prev.nodes[2]);
    expect(shared.edges).toBe(prev.edges);
    expect(shared.layout).toBe(prev.layout);
  });

  it("matches nodes by id when one is removed before others", () => {
    const prev = mlp();
    const next: GraphDocument = JSON.parse(JSON.stringify(prev));
    next.nodes.splice(1, 1);
    const shared = shareUnchanged(prev, next);
    expect(shared.nodes.map((n) => n.id)).toEqual(["x", "act", "y"]);
    expect(shared.nodes[1]).toBe(prev.nodes[2]);
  });

  it("gives back the document itself when nothing changed", () => {
    const prev = mlp();
    expect(shareUnchanged(prev, JSON.parse(JSON.stringify(prev)))).toBe(prev);
  });
});

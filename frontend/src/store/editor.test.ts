import { beforeEach, describe, expect, it } from "vitest";

import type { GraphDocument } from "../api/types";
import { canonical } from "../graph/ops";
import { SERVED } from "../test/catalog";
import { createEditorStore, isDirty } from "./editor";

const START: GraphDocument = {
  format: "shipyard.graph/v1", name: "m",
  nodes: [{ id: "x", type: "Input", params: { shape: [8] } }, { id: "y", type: "Output" }],
  edges: [{ from: "x", to: "y" }],
  layout: { x: [0, 0], y: [400, 0] },
};

let store: ReturnType<typeof createEditorStore>;
beforeEach(() => {
  store = createEditorStore();
  store.getState().setCatalog(SERVED);
  store.getState().load(START, { graph: { id: 1, name: "m", head: 1 }, savedDoc: START });
});

describe("the editor store", () => {
  it("moves the edges of a Split along when its names change, in one undo step", () => {
    const s = () => store.getState();
    const split = s().addBlock("Split", [100, 0])!;
    const out = s().addBlock("Output", [300, 0])!;
    s().connect({ node: split, port: "b" }, { node: out, port: "in" });
    s().setParam(split, "names", ["q", "k"]);
    expect(s().doc.edges.at(-1)).toEqual({ from: `${split}.k`, to: out });
    s().undo();
    expect(s().doc.edges.at(-1)).toEqual({ from: `${split}.b`, to: out });
  });

  it("undoes a sequence of edits back to the exact document, and redoes them", () => {
    const s = () => store.getState();
    const snapshots = [canonical(s().doc)];
    s().select(["x", "y"]);
    s().deleteSelection();
    snapshots.push(canonical(s().doc));
    const lin = s().addBlock("Linear", [100, 0])!;
    snapshots.push(canonical(s().doc));
    s().setParam(lin, "out_features", 10);
    snapshots.push(canonical(s().doc));
    expect(s().rename(lin, "head")).toBeNull();
    snapshots.push(canonical(s().doc));
    s().addBlock("ReLU", [300, 0]);
    snapshots.push(canonical(s().doc));
    s().connect({ node: "head", port: "out" }, { node: "relu1", port: "in" });
    snapshots.push(canonical(s().doc));
    s().move(new Map([["head", [5, 5]]]));
    snapshots.push(canonical(s().doc));
    s().select(["relu1"]);
    s().duplicateSelection();
    snapshots.push(canonical(s().doc));

    for (let i = snapshots.length - 2; i >= 0; i--) {
      s().undo();
      expect(canonical(s().doc)).toBe(snapshots[i]);
    }
    expect(s().doc).toEqual(START);
    for (let i = 1; i < snapshots.length; i++) {
      s().redo();
      expect(canonical(s().doc)).toBe(snapshots[i]);
    }
  });

  it("knows when there are unsaved changes", () => {
    expect(isDirty(store.getState())).toBe(false);
    store.getState().addBlock("ReLU", [0, 0]);
    expect(isDirty(store.getState())).toBe(true);
    store.getState().undo();
    expect(isDirty(store.getState())).toBe(false);
  });

  it("turns a refused edit into a notice and changes nothing", () => {
    const before = store.getState().doc;
    const ok = store.getState().connect({ node: "x", port: "out" }, { node: "y", port: "in" });
    expect(ok).toBe(false);
    expect(store.getState().doc).toBe(before);
    expect(store.getState().notice?.text).toMatch(/already has an input/);
    expect(store.getState().history.past).toHaveLength(0);
  });

  it("changes nothing in a read-only view", () => {
    store.getState().load(START, { readOnly: true, shareToken: "t" });
    expect(store.getState().addBlock("Linear", [0, 0])).toBeNull();
    expect(store.getState().doc).toEqual(START);
  });

  it("makes one undo step of a drag or of typing into a field", () => {
    const s = () => store.getState();
    s().beginGesture();
    s().move(new Map([["x", [10, 0]]]));
    s().move(new Map([["x", [20, 0]]]));
    s().move(new Map([["x", [30, 0]]]));
    s().endGesture();
    expect(s().history.past).toHaveLength(1);
    s().undo();
    expect(s().doc.layout?.x).toEqual([0, 0]);
  });

  it("pastes a copied selection as new blocks and selects them", () => {
    const s = () => store.getState();
    s().select(["x"]);
    const fragment = s().copySelection()!;
    s().paste(JSON.parse(JSON.stringify(fragment)));
    expect(s().selection).toEqual(["x1"]);
    expect(s().doc.nodes.map((n) => n.id)).toEqual(["x", "y", "x1"]);
  });

  it("enters a Repeat, edits inside, and leaves; undo follows the scope back out", () => {
    const s = () => store.getState();
    const rep = s().addBlock("Repeat", [200, 100])!;
    s().enter(rep);
    expect(s().scope).toEqual([rep]);
    s().addBlock("LayerNorm", [100, 0]);
    const inner = s().doc.nodes.find((n) => n.id === rep)!.graph!;
    expect(inner.nodes.map((n) => n.type)).toEqual(["Input", "Output", "LayerNorm"]);
    s().undo();
    s().undo();
    expect(s().scope).toEqual([]);
    s().leaveTo(0);
    expect(s().scope).toEqual([]);
  });

  it("replaces the whole document as one undo step, after a gesture under way, and falls back out of a Repeat that is gone", () => {
    const s = () => store.getState();
    const nested: GraphDocument = {
      ...START,
      nodes: [...START.nodes, {
        id: "rep", type: "Repeat", params: { times: 2 },
        graph: { nodes: [{ id: "x", type: "Input" }, { id: "y", type: "Output" }], edges: [{ from: "x", to: "y" }] },
      }],
    };
    s().load(nested, { graph: { id: 1, name: "m", head: 1 }, savedDoc: nested });
    s().enter("rep");
    expect(s().scope).toEqual(["rep"]);
    s().beginGesture();
    s().setName("typed");
    const typed = s().doc;
    const replaced: GraphDocument = { ...START, name: "from sql" };
    expect(s().replaceDocument(replaced)).toBe(true);
    expect(s().doc).toBe(replaced);
    expect(s().scope).toEqual([]); // the Repeat is not in the new document
    s().undo();
    expect(s().doc).toBe(typed);
    s().undo();
    expect(s().doc).toBe(nested);
    expect(s().replaceDocument(s().doc)).toBe(false); // the same document: no step
  });
});

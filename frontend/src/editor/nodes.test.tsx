import { ReactFlow, ReactFlowProvider } from "@xyflow/react";
import { act } from "react";
import { afterEach, describe, expect, it } from "vitest";

import type { GraphDocument } from "../api/types";
import { render, type Rendered } from "../dialogs/testing";
import { graphAt, setParam } from "../graph/ops";
import { useSql } from "../sql/store";
import { CATALOG } from "../test/catalog";
import { deriveEdges, deriveNodes } from "./flow";
import { nodeTypes } from "./nodes";

function splitDoc(names?: string[]): GraphDocument {
  return {
    format: "shipyard.graph/v1",
    nodes: [
      { id: "x", type: "Input", params: { shape: [4, 24] } },
      { id: "split1", type: "Split", ...(names ? { params: { names } } : {}) },
      { id: "y", type: "Output" },
    ],
    edges: [{ from: "x", to: "split1" }, { from: "split1.a", to: "y" }],
    layout: { x: [0, 0], split1: [200, 0], y: [400, 0] },
  };
}

let shown: Rendered | null = null;
afterEach(() => {
  shown?.unmount();
  shown = null;
});

function canvas(doc: GraphDocument) {
  const graph = graphAt(doc, []);
  const nodes = deriveNodes(graph, [], CATALOG, {}, new Map(), new Set(), false, new Map());
  const edges = deriveEdges(graph, CATALOG, {}, new Set(), new Map());
  return (
    <div style={{ width: 800, height: 600 }}>
      <ReactFlowProvider>
        <ReactFlow nodes={nodes} edges={edges} nodeTypes={nodeTypes} />
      </ReactFlowProvider>
    </div>
  );
}

function handlesIn(container: HTMLElement, id: string): string[] {
  const node = container.querySelector(`[data-node="${id}"]`);
  return [...(node?.querySelectorAll(".react-flow__handle.source") ?? [])].map((h) => h.getAttribute("data-handleid") ?? "");
}

async function handlesOf(doc: GraphDocument, id: string): Promise<string[]> {
  shown?.unmount();
  shown = await render(canvas(doc));
  return handlesIn(shown.container, id);
}

describe("a Split on the canvas", () => {
  it("draws one output handle per name, the defaults' where names is left out", async () => {
    expect(await handlesOf(splitDoc(), "split1")).toEqual(["a", "b"]);
    expect(await handlesOf(splitDoc(["q", "k", "v"]), "split1")).toEqual(["q", "k", "v"]);
  });

  it("redraws its handles when names changes", async () => {
    expect(await handlesOf(splitDoc(), "split1")).toEqual(["a", "b"]);
    const doc = setParam(splitDoc(), [], "split1", "names", ["q", "k", "v"], CATALOG);
    await act(async () => shown!.root.render(canvas(doc)));
    expect(handlesIn(shown!.container, "split1")).toEqual(["q", "k", "v"]);
  });

  it("keeps a single handle on a block of one output", async () => {
    expect(await handlesOf(splitDoc(), "x")).toEqual(["out"]);
  });
});

describe("a block a SQL script touched", () => {
  it("is highlighted while the console's touched set names it", async () => {
    act(() => useSql.setState({ touched: new Set(["split1"]) }));
    shown = await render(canvas(splitDoc()));
    const block = (id: string) => shown!.container.querySelector(`[data-node="${id}"]`)!;
    expect(block("split1").classList.contains("sql-touched")).toBe(true);
    expect(block("x").classList.contains("sql-touched")).toBe(false);
    act(() => useSql.getState().clearTouched());
    expect(block("split1").classList.contains("sql-touched")).toBe(false);
  });
});

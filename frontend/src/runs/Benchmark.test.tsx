import { ReactFlowProvider } from "@xyflow/react";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { GraphDocument } from "../api/types";
import { BlockNode, RepeatNode } from "../editor/nodes";
import { StatusBar } from "../editor/StatusBar";
import { useEditor } from "../store/editor";
import { COSTS, row } from "../test/benchmark";
import { SERVED } from "../test/catalog";
import { BenchmarkResults, ResultsTable } from "./Benchmark";
import { Compare } from "./Compare";
import { toRunEvents, toRunJob } from "./events";
import { NodeCosts } from "./NodeCosts";
import { runsStore } from "./store";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let root: Root;
let container: HTMLElement;

const $ = <T extends Element = HTMLElement>(selector: string) => container.querySelector<T>(selector);
const $$ = (selector: string) => [...container.querySelectorAll<HTMLElement>(selector)];

async function render(element: React.ReactNode) {
  await act(async () => root.render(element));
}

const benchmarkJob = (over: Record<string, unknown> = {}) => toRunJob({
  id: 11, graph: 7, version: 2, kind: "benchmark", status: "running", config: { batch_sizes: [1, 8] },
  created_at: "2026-01-01T00:00:00Z", ...over,
});

const MACHINE = { cpu: "AMD EPYC 9654", cores: 16, gpu: "NVIDIA H200", gpu_memory: 150e9, device: "cuda", torch: "2.5.1", onnxruntime: "1.20.0", python: "3.11.9" };

/** A graph with a Repeat whose body holds `attn` and `act`. */
const DOC: GraphDocument = {
  format: "shipyard.graph/v1", name: "m",
  nodes: [
    { id: "x", type: "Input", params: { shape: [8] } },
    { id: "fc", type: "Linear", params: { out_features: 8 } },
    {
      id: "blocks", type: "Repeat", params: { times: 2 },
      graph: {
        nodes: [{ id: "in", type: "Input" }, { id: "attn", type: "Linear", params: { out_features: 8 } }, { id: "act", type: "ReLU" }, { id: "out", type: "Output" }],
        edges: [{ from: "in", to: "attn" }, { from: "attn", to: "act" }, { from: "act", to: "out" }],
      },
    },
    { id: "head", type: "Linear", params: { out_features: 2 } },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "fc" }, { from: "fc", to: "blocks" }, { from: "blocks", to: "head" }, { from: "head", to: "y" }],
} as GraphDocument;

beforeEach(() => {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  useEditor.getState().setCatalog(SERVED);
  useEditor.getState().load(DOC, { graph: { id: 7, name: "m", head: 2 }, savedDoc: DOC });
  runsStore.setState({ job: null, events: [], runs: [], costOverlay: false, costBatch: null, mode: "benchmark" });
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
  runsStore.setState({ job: null, events: [], runs: [], costOverlay: false, costBatch: null, mode: "train" });
});

describe("the results table", () => {
  it("fills in live: the progress line, then a row per backend × batch as each lands", async () => {
    runsStore.setState({ job: benchmarkJob(), events: [] });
    await render(<BenchmarkResults />);
    expect($('[data-testid="bench-results"]')).toBeNull();
    await act(async () => runsStore.setState({
      events: toRunEvents([
        { type: "benchmark", seq: 1, step: 0, time: 0, ...row("eager", 1, 2) },
        { type: "progress", seq: 2, step: 0, time: 0, backend: "onnxruntime", batch: 64, done: 40, total: 100 },
      ]),
    }));
    expect($('[data-testid="bench-progress"]')!.textContent).toContain("onnxruntime, batch 64: 40/100");
    expect($$("[data-row]").map((r) => r.dataset.row)).toEqual(["eager@1"]);
    await act(async () => runsStore.setState((s) => ({
      events: [...s.events, ...toRunEvents([{ type: "benchmark", seq: 3, step: 0, time: 0, ...row("compile", 1, 1) }])],
    })));
    expect($$("[data-row]").map((r) => r.dataset.row)).toEqual(["eager@1", "compile@1"]);
    expect($('[data-row="compile@1"]')!.dataset.standing).toBe("best");
  });

  it("gives an error row's reason, flags a row that differs from eager in red, and ranks only the others", async () => {
    await render(<ResultsTable rows={[
      row("eager", 1, 2),
      row("compile", 1, null, { error: "torch.compile needs a C compiler on the worker." }),
      row("onnxruntime", 1, 0.4, { within_tolerance: false, max_abs_diff: 0.25 }),
      row("eager_bf16", 1, 1.5),
    ]} />);
    const error = $('[data-row="compile@1"]')!;
    expect(error.textContent).toContain("cannot run: torch.compile needs a C compiler on the worker.");
    const flagged = $('[data-row="onnxruntime@1"]')!;
    expect(flagged.className).toContain("bench-flagged");
    expect(flagged.textContent).toContain("2.5e-1");
    expect(flagged.textContent).toContain("differs");
    // onnxruntime is the fastest, but flagged: the best is the fastest of the others.
    expect($('[data-row="eager_bf16@1"]')!.dataset.standing).toBe("best");
    expect($$(".bench-best").length).toBe(1);
    expect(flagged.textContent).not.toContain("★");
  });

  it("shows the machine with a finished result", async () => {
    runsStore.setState({ job: benchmarkJob({ status: "succeeded", result: { machine: MACHINE, rows: [row("eager", 1, 2)], node_costs: [], settings: {} } }) });
    await render(<BenchmarkResults />);
    const machine = $('[data-testid="bench-machine"]')!.textContent!;
    expect(machine).toContain("AMD EPYC 9654 · 16 cores · NVIDIA H200 (140 GiB)");
    expect(machine).toContain("torch 2.5.1 · onnxruntime 1.20.0");
  });
});

describe("node costs", () => {
  const finished = () => benchmarkJob({ status: "succeeded", result: { machine: MACHINE, rows: [row("eager", 8, 10)], node_costs: [COSTS], settings: {} } });

  it("lists the nodes by time, a Repeat's copies under it; a click selects the node on the canvas", async () => {
    runsStore.setState({ job: finished() });
    await render(<NodeCosts />);
    expect($$("[data-node]").map((r) => r.dataset.node)).toEqual([
      "blocks", "blocks.0.attn", "blocks.1.attn", "blocks.0.act", "blocks.1.act", "fc", "head",
    ]);
    expect($('[data-node="blocks"]')!.textContent).toContain("80%");
    await act(async () => $('[data-node="blocks.1.attn"]')!.click());
    expect(useEditor.getState().scope).toEqual(["blocks"]);
    expect(useEditor.getState().selection).toEqual(["attn"]);
    await act(async () => $('[data-node="head"] button')!.click());
    expect(useEditor.getState().scope).toEqual([]);
    expect(useEditor.getState().selection).toEqual(["head"]);
  });

  it("says so when the graph no longer has the node", async () => {
    runsStore.setState({ job: finished() });
    useEditor.getState().load({ ...DOC, nodes: DOC.nodes.filter((n) => n.id !== "head") }, { graph: { id: 7, name: "m", head: 3 } });
    await render(<NodeCosts />);
    await act(async () => $('[data-node="head"]')!.click());
    expect(container.textContent).toContain("The graph has no node “head” now");
  });

  it("colours the canvas's blocks by their share once Cost is on in the status bar", async () => {
    runsStore.setState({ job: finished() });
    const props = (id: string, type: "block" | "repeat") => {
      const node = DOC.nodes.find((n) => n.id === id)!;
      return {
        id, type, selected: false, dragging: false, zIndex: 0, isConnectable: false, positionAbsoluteX: 0, positionAbsoluteY: 0,
        draggable: false, selectable: true, deletable: false,
        data: { node, block: SERVED.blocks.find((b) => b.type === node.type), report: undefined, problems: undefined, module: id, readOnly: false, vertical: true },
      } as unknown as Parameters<typeof BlockNode>[0];
    };
    await render(
      <ReactFlowProvider>
        <StatusBar />
        <BlockNode {...props("fc", "block")} />
        <RepeatNode {...props("blocks", "repeat")} />
      </ReactFlowProvider>,
    );
    expect($('[data-testid="node-heat"]')).toBeNull();
    const toggle = $('[data-testid="cost-toggle"]')!;
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    await act(async () => toggle.click());
    expect(runsStore.getState().costOverlay).toBe(true);
    const fc = $('[data-node="fc"]')!;
    const blocks = $('[data-node="blocks"]')!;
    expect(fc.className).toContain("heat");
    expect(fc.style.getPropertyValue("--heat")).toBe("0.125"); // 10% against the Repeat's 80%
    expect(blocks.style.getPropertyValue("--heat")).toBe("1.000");
    expect(fc.querySelector('[data-testid="node-heat"]')!.textContent).toBe("10%");
    expect(blocks.querySelector('[data-testid="node-heat"]')!.textContent).toBe("80%");

    // A training run open: no costs, no toggle, no tint.
    await act(async () => runsStore.setState({ job: toRunJob({ id: 12, kind: "train", status: "succeeded" }) }));
    expect($('[data-testid="cost-toggle"]')).toBeNull();
    expect($('[data-testid="node-heat"]')).toBeNull();
  });
});

describe("comparing two benchmarks", () => {
  it("shows both runs' medians with B/A per backend × batch, and per node", async () => {
    const result = (rows: ReturnType<typeof row>[], fcMs: number) => ({
      machine: MACHINE, rows, settings: {},
      node_costs: [{ ...COSTS, nodes: COSTS.nodes.map((n) => (n.node === "fc" ? { ...n, ms: fcMs } : n)) }],
    });
    runsStore.setState({
      runs: [
        benchmarkJob({ id: 21, status: "succeeded", result: result([row("eager", 1, 1), row("compile", 1, 3)], 4) }),
        toRunJob({ id: 20, kind: "train", status: "succeeded" }),
        benchmarkJob({ id: 19, status: "succeeded", result: result([row("eager", 1, 2), row("compile", 1, 2)], 1) }),
      ],
    });
    await render(<Compare />);
    expect($<HTMLSelectElement>('[data-testid="bench-compare-a"]')!.value).toBe("19");
    expect($<HTMLSelectElement>('[data-testid="bench-compare-b"]')!.value).toBe("21");
    const ratio = (table: string, key: string) => $(`[data-testid="${table}"] [${key}] [data-testid="ratio"]`)!.textContent;
    expect(ratio("bench-compare", 'data-row="eager@1"')).toBe("0.50×");
    expect(ratio("bench-compare", 'data-row="compile@1"')).toBe("1.50×");
    expect(ratio("bench-compare-nodes", 'data-node="fc"')).toBe("4.00×");
    expect(ratio("bench-compare-nodes", 'data-node="head"')).toBe("1.00×");
  });

  it("needs two finished benchmarks", async () => {
    runsStore.setState({ runs: [benchmarkJob({ status: "succeeded" })] });
    await render(<Compare />);
    expect(container.textContent).toContain("Compare needs two finished benchmarks");
  });
});

import { ReactFlowProvider } from "@xyflow/react";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { GraphDocument } from "../api/types";
import { BlockNode } from "../editor/nodes";
import { StatusBar } from "../editor/StatusBar";
import { useEditor } from "../store/editor";
import { SERVED } from "../test/catalog";
import { FPGA_RESULT } from "../test/fpga";
import { NO_MARKS } from "./check";
import { toRunEvents, toRunJob } from "./events";
import { FpgaResults, FpgaStatus, FpgaSweep } from "./Fpga";
import { runsStore } from "./store";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let root: Root;
let container: HTMLElement;

const $ = <T extends Element = HTMLElement>(selector: string) => container.querySelector<T>(selector);
const $$ = (selector: string) => [...container.querySelectorAll<HTMLElement>(selector)];

async function render(element: React.ReactNode) {
  await act(async () => root.render(element));
}

const fpgaJob = (over: Record<string, unknown> = {}) => toRunJob({
  id: 31, graph: 7, version: 2, kind: "fpga", status: "succeeded", config: { sweep_bits: [8, 12] },
  created_at: "2026-01-01T00:00:00Z", result: FPGA_RESULT, ...over,
});

const DOC: GraphDocument = {
  format: "shipyard.graph/v1", name: "m",
  nodes: [
    { id: "x", type: "Input", params: { shape: [8] } },
    { id: "fc", type: "Linear", params: { out_features: 8 } },
    { id: "head", type: "Linear", params: { out_features: 2 } },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "fc" }, { from: "fc", to: "head" }, { from: "head", to: "y" }],
} as GraphDocument;

/** A block's props as the canvas gives them. */
const props = (id: string) => {
  const node = DOC.nodes.find((n) => n.id === id)!;
  return {
    id, type: "block", selected: false, dragging: false, zIndex: 0, isConnectable: false, positionAbsoluteX: 0, positionAbsoluteY: 0,
    draggable: false, selectable: true, deletable: false,
    data: { node, block: SERVED.blocks.find((b) => b.type === node.type), report: undefined, problems: undefined, module: id, readOnly: false, vertical: true },
  } as unknown as Parameters<typeof BlockNode>[0];
};

beforeEach(() => {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  useEditor.getState().setCatalog(SERVED);
  useEditor.getState().load(DOC, { graph: { id: 7, name: "m", head: 2 }, savedDoc: DOC });
  runsStore.setState({ job: null, events: [], runs: [], costOverlay: false, costBatch: null, mode: "fpga", checkMarks: NO_MARKS });
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
  runsStore.setState({ job: null, events: [], runs: [], costOverlay: false, costBatch: null, mode: "train", checkMarks: NO_MARKS });
});

describe("an FPGA run's results", () => {
  it("shows the stage under way while it runs", async () => {
    runsStore.setState({
      job: fpgaJob({ status: "running", result: null }),
      events: toRunEvents([{ type: "stage", seq: 1, step: 0, time: 0, stage: "compile", text: "compiling (first compile takes 5-20 s)", seconds: null }]),
    });
    await render(<FpgaStatus job={runsStore.getState().job!} />);
    expect($('[data-testid="run-status"]')!.textContent).toContain("FPGA run #31");
    expect($('[data-testid="fpga-stage"]')!.textContent).toBe("compiling (first compile takes 5-20 s)…");
  });

  it("gives the agreement, the errors and the inputs; per node, largest first; a row selects its node", async () => {
    runsStore.setState({ job: fpgaJob() });
    await render(<FpgaResults />);
    expect($('[data-testid="fpga-agreement"]')!.textContent).toBe("97.5%");
    expect($('[data-testid="fpga-max-error"]')!.textContent).toBe("0.078");
    expect($('[data-testid="fpga-comparison"]')!.textContent).toContain("40 seeded random inputs");
    expect($$('[data-testid="fpga-nodes"] [data-node]').map((r) => r.dataset.node)).toEqual(["head", "fc"]);
    await act(async () => $('[data-node="fc"]')!.click());
    expect(useEditor.getState().selection).toEqual(["fc"]);
    expect($('[data-tool="vitis_hls"]')!.textContent).toBe("Vitis HLS: did not run: Vitis HLS is not on this worker's PATH");
    expect($('[data-testid="fpga-result-warnings"]')!.textContent).toContain("head: Softmax is computed with lookup tables");
  });

  it("shows a failed run's error and the tools' last lines as text, never as HTML", async () => {
    const hostile = '<img src=x onerror="alert(1)"> g++: error: expected \';\'';
    runsStore.setState({
      job: fpgaJob({ status: "failed", error: "build failed: <b>g++</b> exited with 1", result: { ...FPGA_RESULT, comparison: null, log_tail: ["line 1", hostile] } }),
    });
    await render(<FpgaResults />);
    const failure = $('[data-testid="fpga-failure"]')!;
    expect(failure.textContent).toContain("build failed: <b>g++</b> exited with 1");
    expect($('[data-testid="fpga-log"]')!.textContent).toBe(`line 1\n${hostile}`);
    expect(failure.querySelector("img, b")).toBeNull();
    expect(container.textContent).toContain("This run made no comparison.");
  });

  it("lists the sweep by bit width", async () => {
    runsStore.setState({ job: fpgaJob() });
    await render(<FpgaSweep />);
    expect($$('[data-testid="fpga-sweep"] [data-bits]').map((r) => r.dataset.bits)).toEqual(["8", "12"]);
    expect($('[data-bits="12"]')!.textContent).toContain("ap_fixed<12,6>");
    expect($('[data-bits="12"]')!.textContent).toContain("95.0%");
  });
});

describe("the canvas with an FPGA run", () => {
  it("tints the nodes with a figure by their error once Error is on; the others show nothing", async () => {
    runsStore.setState({ job: fpgaJob() });
    await render(
      <ReactFlowProvider>
        <StatusBar />
        <BlockNode {...props("x")} />
        <BlockNode {...props("fc")} />
        <BlockNode {...props("head")} />
      </ReactFlowProvider>,
    );
    const toggle = $('[data-testid="cost-toggle"]')!;
    expect(toggle.textContent).toBe("Error");
    expect($('[data-testid="node-heat"]')).toBeNull();
    await act(async () => toggle.click());
    const badge = (id: string) => $(`[data-node="${id}"] [data-testid="node-heat"]`)?.textContent ?? null;
    expect(badge("head")).toBe("±0.08");
    expect(badge("fc")).toBe("±0.02");
    expect(badge("x")).toBeNull();
    expect($('[data-node="fc"]')!.style.getPropertyValue("--heat")).toBe("0.250");
    expect($('[data-node="head"]')!.title).toContain("max error 0.08, mean 0.02");
  });

  it("shows the live check's warning on its node in the warning style", async () => {
    await render(
      <ReactFlowProvider>
        <BlockNode {...props("fc")} />
        <BlockNode {...props("head")} />
      </ReactFlowProvider>,
    );
    expect($('[data-testid="node-warning"]')).toBeNull();
    await act(async () => runsStore.getState().setCheckMarks({
      problems: [], warnings: [{ message: "Softmax is computed with lookup tables", node: "head", field: "type" }],
    }));
    const head = $('[data-node="head"]')!;
    expect(head.className).toContain("has-warning");
    expect(head.querySelector('[data-testid="node-warning"]')!.textContent).toBe("Softmax is computed with lookup tables");
    expect($('[data-node="fc"] [data-testid="node-warning"]')).toBeNull();
  });
});

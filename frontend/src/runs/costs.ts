// The open benchmark as the drawer and the canvas read it: its view (rows, node costs,
// progress), the node costs shown (at the batch size picked), each canvas node's heat, and
// selecting on the canvas the node a cost row names. The open FPGA run likewise: its view,
// and each node's error against the float model as the canvas's overlay (the same switch).

import type { Problem } from "../api/types";
import { graphAt } from "../graph/ops";
import { problemsIn } from "../graph/report";
import { useEditor } from "../store/editor";
import { agreementText, errorHeatAt, errorText, fpgaView, NO_FPGA, type FpgaView, type NodeErrorHeat } from "./fpga";
import {
  benchmarkView, costsAtBatch, heatAt, kindOf, memoLast, parseCostNode, type BenchmarkView,
  type NodeCosts, type NodeHeat,
} from "./benchmark";
import { useRuns, type RunsState } from "./store";

const viewOf = memoLast(benchmarkView);
const costsOf = memoLast(costsAtBatch);
const heatOf = memoLast(heatAt);
const fpgaViewOf = memoLast(fpgaView);
const errorHeatOf = memoLast(errorHeatAt);

const NO_VIEW: BenchmarkView = { progress: null, rows: [], nodeCosts: [], machine: null };

/** The open run's benchmark view (empty for a training run). */
export function selectBenchmark(s: Pick<RunsState, "job" | "events">): BenchmarkView {
  return kindOf(s.job) === "benchmark" ? viewOf(s.job, s.events) : NO_VIEW;
}

/** The node costs the drawer and the canvas show: at the batch size picked, else the largest. */
export function selectCosts(s: Pick<RunsState, "job" | "events" | "costBatch">): NodeCosts | null {
  return costsOf(selectBenchmark(s).nodeCosts, s.costBatch);
}

export function useBenchmark(): BenchmarkView {
  return useRuns(selectBenchmark);
}

export function useShownCosts(): NodeCosts | null {
  return useRuns(selectCosts);
}

/** The open run's FPGA view (empty for another kind). */
export function selectFpga(s: Pick<RunsState, "job" | "events">): FpgaView {
  return kindOf(s.job) === "fpga" ? fpgaViewOf(s.job, s.events) : NO_FPGA;
}

export function useFpga(): FpgaView {
  return useRuns(selectFpga);
}

/** What the canvas's overlay can show now: the open benchmark's node costs, the open FPGA
 * run's per-node errors, or nothing (the status bar's toggle is hidden). */
export type OverlayKind = "cost" | "error" | null;

export function selectOverlayKind(s: Pick<RunsState, "job" | "events" | "costBatch">): OverlayKind {
  if (selectCosts(s) !== null) return "cost";
  return selectFpga(s).comparison?.nodes.length ? "error" : null;
}

export function useOverlayKind(): OverlayKind {
  return useRuns(selectOverlayKind);
}

/** How a block looks under the overlay: the tint's strength (0 to 1), a badge, a tooltip. */
export interface NodeOverlay {
  strength: number;
  badge: string;
  title: string;
}

/** A benchmark's heat as the overlay shows it. */
export function costOverlay(heat: NodeHeat): NodeOverlay {
  const copies = heat.copies.length > 1
    ? ` (all ${heat.copies.length} copies; ${heat.copies.map((c) => `${c.node} ${(c.share * 100).toFixed(1)}%`).join(", ")})` : "";
  return {
    strength: heat.strength,
    badge: `${(heat.share * 100).toFixed(heat.share >= 0.1 ? 0 : 1)}%`,
    title: `${(heat.share * 100).toFixed(1)}% of the forward time, ${heat.ms.toPrecision(3)} ms${copies}`,
  };
}

/** An FPGA run's error of a node as the overlay shows it. */
export function errorOverlay(heat: NodeErrorHeat, precision: string): NodeOverlay {
  return {
    strength: heat.strength,
    badge: `±${errorText(heat.max_error)}`,
    title: `fixed point (${precision}) against float: max error ${errorText(heat.max_error)}, mean ${errorText(heat.mean_error)}`,
  };
}

const overlays = new WeakMap<object, NodeOverlay>();

/** `make(heat)`, the same object for the same heat (so a block re-renders only when it changed). */
function overlayOf<T extends object>(heat: T | undefined, make: (heat: T) => NodeOverlay): NodeOverlay | null {
  if (!heat) return null;
  let found = overlays.get(heat);
  if (!found) {
    found = make(heat);
    overlays.set(heat, found);
  }
  return found;
}

/** The overlay of a node drawn on the canvas (at the editor's scope); null with the overlay
 * off, and for a node without a figure. */
export function selectNodeOverlay(s: RunsState, scope: readonly string[], id: string): NodeOverlay | null {
  if (!s.costOverlay) return null;
  const costs = selectCosts(s);
  if (costs) return overlayOf(heatOf(costs, scope).get(id), costOverlay);
  const comparison = selectFpga(s).comparison;
  if (!comparison) return null;
  return overlayOf(errorHeatOf(comparison, scope).get(id), (h) => errorOverlay(h, comparison.precision));
}

export function useNodeOverlay(id: string): NodeOverlay | null {
  const scope = useEditor((s) => s.scope);
  return useRuns((s) => selectNodeOverlay(s, scope, id));
}

const warningsOf = memoLast(problemsIn);
const NO_WARNINGS: Problem[] = [];

/** What the run form's live check warns of a node drawn on the canvas (at the editor's scope). */
export function useNodeWarnings(id: string): Problem[] {
  const scope = useEditor((s) => s.scope);
  return useRuns((s) => warningsOf(s.checkMarks.warnings, scope).get(id) ?? NO_WARNINGS);
}

/** "99.4% agreement" for the drawer's head line. */
export function fpgaSummary(view: FpgaView): string | null {
  if (view.current) return view.current;
  return view.comparison ? `${agreementText(view.comparison.agreement)} agreement` : null;
}

/**
 * Shows on the canvas the node a cost row names: the Repeat it is in is opened (the canvas
 * draws one copy), and the node selected. False when the graph has no such node (it was
 * edited since the run).
 */
export function selectCostNode(path: string): boolean {
  const { scope, id } = parseCostNode(path);
  const editor = useEditor.getState();
  try {
    if (!graphAt(editor.doc, scope).nodes.some((n) => n.id === id)) return false;
  } catch {
    return false;
  }
  const same = editor.scope.length === scope.length && editor.scope.every((s, i) => s === scope[i]);
  if (!same) {
    editor.leaveTo(0);
    for (const repeat of scope) useEditor.getState().enter(repeat);
  }
  useEditor.getState().select([id]);
  return true;
}

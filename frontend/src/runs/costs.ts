// The open benchmark as the drawer and the canvas read it: its view (rows, node costs,
// progress), the node costs shown (at the batch size picked), each canvas node's heat, and
// selecting on the canvas the node a cost row names.

import { graphAt } from "../graph/ops";
import { useEditor } from "../store/editor";
import {
  benchmarkView, costsAtBatch, heatAt, kindOf, memoLast, parseCostNode, type BenchmarkView,
  type NodeCosts, type NodeHeat,
} from "./benchmark";
import { useRuns, type RunsState } from "./store";

const viewOf = memoLast(benchmarkView);
const costsOf = memoLast(costsAtBatch);
const heatOf = memoLast(heatAt);

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

/** Whether the canvas can show node costs now (the status bar's toggle). */
export function useHasCosts(): boolean {
  return useRuns((s) => selectCosts(s) !== null);
}

/** The heat of a node drawn on the canvas (at the editor's scope); null with the overlay off. */
export function useNodeHeat(id: string): NodeHeat | null {
  const scope = useEditor((s) => s.scope);
  return useRuns((s) => (s.costOverlay ? heatOf(selectCosts(s), scope).get(id) ?? null : null));
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

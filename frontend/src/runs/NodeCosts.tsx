// The "Node costs" tab: where the open benchmark's forward time went, per graph node, as a
// table sorted by time (a Repeat's summed row, then its copies under it). Clicking a row
// selects that node on the canvas; the canvas's heat overlay shows the same figures.

import { useMemo, useState } from "react";

import { flops } from "../ui/format";
import { kindOf, type NodeCost } from "./benchmark";
import { ms, percent, perSecond } from "./Benchmark";
import { selectCostNode, useBenchmark, useShownCosts } from "./costs";
import { runsStore, useRuns } from "./store";

export interface CostLine {
  cost: NodeCost;
  depth: number;
}

/**
 * The rows in table order: the top-level nodes (and each Repeat's summed row) by time,
 * costliest first, each followed by the rows it holds (parent = its id), also by time.
 */
export function costLines(nodes: readonly NodeCost[]): CostLine[] {
  const ids = new Set(nodes.map((n) => n.node));
  const children = new Map<string | null, NodeCost[]>();
  for (const n of nodes) {
    const parent = n.parent !== null && ids.has(n.parent) ? n.parent : null;
    children.set(parent, [...(children.get(parent) ?? []), n]);
  }
  const lines: CostLine[] = [];
  const seen = new Set<string>();
  const walk = (parent: string | null, depth: number) => {
    const list = [...(children.get(parent) ?? [])].sort((a, b) => b.ms - a.ms || a.node.localeCompare(b.node));
    for (const cost of list) {
      if (seen.has(cost.node)) continue;
      seen.add(cost.node);
      lines.push({ cost, depth });
      walk(cost.node, depth + 1);
    }
  };
  walk(null, 0);
  return lines;
}

export function NodeCostTable({ nodes, onPick }: { nodes: readonly NodeCost[]; onPick(node: string): void }) {
  const lines = useMemo(() => costLines(nodes), [nodes]);
  return (
    <table className="bench-table bench-costs" data-testid="bench-costs">
      <thead>
        <tr>
          <th>Node</th>
          <th>Type</th>
          <th className="num">Time</th>
          <th className="num">Share</th>
          <th className="num">FLOPs</th>
          <th className="num">Achieved</th>
        </tr>
      </thead>
      <tbody>
        {lines.map(({ cost, depth }) => (
          <tr key={cost.node} data-node={cost.node} className="bench-pick" onClick={() => onPick(cost.node)}>
            <td style={{ paddingLeft: `${6 + depth * 14}px` }}>
              <button type="button" className="link" title="Select this node on the canvas" onClick={(e) => {
                e.stopPropagation();
                onPick(cost.node);
              }}>
                {cost.node}
              </button>
            </td>
            <td>{cost.type}</td>
            <td className="num">{ms(cost.ms)}</td>
            <td className="num">
              <span className="bench-share" style={{ "--share": cost.share } as React.CSSProperties}>{percent(cost.share)}</span>
            </td>
            <td className="num">{flops(cost.flops)}</td>
            <td className="num">{perSecond(cost.flops_per_s, "FLOP")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The tab: the batch size picker, the overlay's switch, the table. */
export function NodeCosts() {
  const job = useRuns((s) => s.job);
  const { nodeCosts } = useBenchmark();
  const shown = useShownCosts();
  const overlay = useRuns((s) => s.costOverlay);
  const [missing, setMissing] = useState<string | null>(null);
  if (!job || kindOf(job) !== "benchmark") return <p className="runs-empty">Start or open a benchmark to see where its time goes.</p>;
  if (!shown) {
    return (
      <p className="runs-empty">
        {job.config.per_node === false ? "This benchmark did not measure each node (per_node was off)." : "No node costs yet: they come after eager's timing."}
      </p>
    );
  }
  const batches = [...new Set(nodeCosts.map((c) => c.batch))].sort((a, b) => a - b);
  const pick = (node: string) => {
    const found = selectCostNode(node);
    setMissing(found ? null : node);
  };
  return (
    <div className="bench-costs-tab">
      <div className="bench-tools">
        {batches.length > 1 && (
          <label className="runs-inline">
            <span className="runs-muted">batch</span>
            <select value={shown.batch} aria-label="Batch size" onChange={(e) => runsStore.getState().setCostBatch(Number(e.target.value))}>
              {batches.map((b) => <option key={b} value={b}>{b}</option>)}
            </select>
          </label>
        )}
        <label className="runs-check">
          <input type="checkbox" data-testid="bench-overlay" checked={overlay} onChange={(e) => runsStore.getState().setCostOverlay(e.target.checked)} />
          Show on the canvas
        </label>
        <span className="runs-muted">{shown.backend}, batch {shown.batch} · {shown.method}</span>
      </div>
      {missing && <p className="runs-warn">The graph has no node “{missing}” now: it was edited after this benchmark.</p>}
      <NodeCostTable nodes={shown.nodes} onPick={pick} />
    </div>
  );
}

// The status line: the model's totals and whether it is valid, always in view. With
// problems, the totals cover only the blocks that could be measured, and say so. With a
// benchmark open that measured each node, "Cost" paints the canvas with where time goes;
// with an FPGA run open that compared each node, "Error" paints it with the fixed-point error.
import type { InspectReport } from "../api/types";
import { useOverlayKind } from "../runs/costs";
import { runsStore, useRuns } from "../runs/store";
import { useSql } from "../sql/store";
import { useEditor } from "../store/editor";
import { bytes, compact, flops, plural } from "../ui/format";

/** Blocks of the top-level graph that the server could not measure (at fault, or after one). */
export function unmeasured(report: InspectReport | null): number {
  if (!report) return 0;
  return Object.values(report.nodes).filter(
    (n) => n.status !== "ok" && n.type !== "Input" && n.type !== "Output").length;
}

/** The switch of the canvas's overlay: there only when the open benchmark has node costs
 * ("Cost") or the open FPGA run per-node errors ("Error"). */
function CostToggle() {
  const kind = useOverlayKind();
  const on = useRuns((s) => s.costOverlay);
  if (!kind) return null;
  return (
    <button
      className={`link cost-toggle${on ? " on" : ""}`}
      data-testid="cost-toggle"
      data-overlay={kind}
      aria-pressed={on}
      title={kind === "cost"
        ? "Colour each block by its share of the forward time (the open benchmark's node costs)"
        : "Colour each block by its largest error in fixed point against the float model (the open FPGA run)"}
      onClick={() => runsStore.getState().setCostOverlay(!on)}
    >
      {kind === "cost" ? "Cost" : "Error"}
    </button>
  );
}

export function StatusBar() {
  const report = useEditor((s) => s.report);
  const inspecting = useEditor((s) => s.inspecting);
  const inspectError = useEditor((s) => s.inspectError);
  const drawerOpen = useEditor((s) => s.drawerOpen);
  const openDrawer = useEditor((s) => s.openDrawer);
  const sqlOpen = useSql((s) => s.open);
  const nodeCount = useEditor((s) => s.doc.nodes.length);
  const totals = report?.totals;
  const problems = report?.problems.length ?? 0;
  const missing = unmeasured(report);
  // A sum that leaves blocks out is a lower bound ("≥"), and nothing measured is no number.
  const partial = missing > 0;
  const reason = `${plural(missing, "block")} not measured until the problems are fixed`;
  const atLeast = partial ? "≥ " : "";
  return (
    <footer className="statusbar" data-testid="status-bar">
      {totals ? (
        <>
          <span data-testid="total-params" title={partial ? `${totals.params} parameters in the blocks measured; ${reason}` : `${totals.params} parameters`}>
            {partial && totals.params === 0 ? "—" : atLeast + compact(totals.params)} params
          </span>
          <span>{partial && !totals.flops ? "— FLOPs" : atLeast + flops(totals.flops)}/sample</span>
          <span title="weights plus activations for one sample">est. {atLeast}{bytes(totals.estimated_bytes)}</span>
          {partial && <span className="muted" data-testid="unmeasured">({reason})</span>}
        </>
      ) : <span data-testid="total-params">–</span>}
      <span>{plural(nodeCount, "block")}</span>
      <span data-testid="validity" className={report ? (problems ? "bad" : "ok") : "muted"}>
        {report ? (problems ? plural(problems, "problem") : "✓ valid") : "checking…"}
      </span>
      {inspecting && <span className="muted">checking…</span>}
      {inspectError && <span className="bad">{inspectError}</span>}
      <span className="spacer" />
      <CostToggle />
      <button
        className="link"
        data-testid="sql-toggle"
        onClick={() => useSql.getState().toggle()}
        aria-expanded={sqlOpen}
        title="The SQL console: query and change the model (Q)"
      >
        SQL {sqlOpen ? "▾" : "▴"}
      </button>
      <button className="link" onClick={() => openDrawer(!drawerOpen)} aria-expanded={drawerOpen}>
        Runs {drawerOpen ? "▾" : "▴"}
      </button>
    </footer>
  );
}

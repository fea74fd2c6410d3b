// The status line: the model's totals and whether it is valid, always in view.
import { useEditor } from "../store/editor";
import { bytes, compact, flops, plural } from "../ui/format";

export function StatusBar() {
  const report = useEditor((s) => s.report);
  const inspecting = useEditor((s) => s.inspecting);
  const inspectError = useEditor((s) => s.inspectError);
  const drawerOpen = useEditor((s) => s.drawerOpen);
  const openDrawer = useEditor((s) => s.openDrawer);
  const nodeCount = useEditor((s) => s.doc.nodes.length);
  const totals = report?.totals;
  const problems = report?.problems.length ?? 0;
  return (
    <footer className="statusbar" data-testid="status-bar">
      {totals ? (
        <>
          <span data-testid="total-params" title={`${totals.params} parameters`}>{compact(totals.params)} params</span>
          <span>{flops(totals.flops)}/sample</span>
          <span title="weights plus activations for one sample">est. {bytes(totals.estimated_bytes)}</span>
        </>
      ) : <span data-testid="total-params">–</span>}
      <span>{plural(nodeCount, "block")}</span>
      <span data-testid="validity" className={report ? (problems ? "bad" : "ok") : "muted"}>
        {report ? (problems ? plural(problems, "problem") : "✓ valid") : "checking…"}
      </span>
      {inspecting && <span className="muted">checking…</span>}
      {inspectError && <span className="bad">{inspectError}</span>}
      <span className="spacer" />
      <button className="link" onClick={() => openDrawer(!drawerOpen)} aria-expanded={drawerOpen}>
        Runs {drawerOpen ? "▾" : "▴"}
      </button>
    </footer>
  );
}

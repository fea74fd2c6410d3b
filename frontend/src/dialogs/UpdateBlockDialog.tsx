// "Update to vN" of a block from My blocks: what the newer version changes at the node's
// ports (shapes before and after) and the problems the graph would have with it, from the
// engine's report of the changed document; the node is replaced only when accepted.
import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { CustomBlock, Problem } from "../api/types";
import { type PortChange, replaceCustom, updateChanges } from "../graph/custom";
import { graphAt } from "../graph/ops";
import { useEditor } from "../store/editor";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine } from "./common";
import { errorText } from "./format";

export function UpdateBlockDialog() {
  const pending = useEditor((s) => s.pendingUpdate);
  const [found, setFound] = useState<CustomBlock | null>(null);
  const [changes, setChanges] = useState<PortChange[]>([]);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!pending) return;
    let live = true;
    (async () => {
      try {
        const fresh = await api.customBlock(pending.source, pending.version);
        const { doc, scope, report } = useEditor.getState();
        const node = graphAt(doc, scope).nodes.find((n) => n.id === pending.id);
        if (!node) throw new Error(`${pending.id} is gone`);
        const now = scope.length === 0 ? report?.nodes?.[pending.id] : undefined;
        const changed = replaceCustom(doc, scope, pending.id, fresh.node);
        const after = await api.inspect(changed);
        if (!live) return;
        setFound(fresh);
        setChanges(updateChanges(node, now, fresh));
        setProblems(after.problems);
      } catch (caught) {
        if (live) setError(`Cannot prepare the update: ${errorText(caught)}`);
      }
    })();
    return () => {
      live = false;
    };
  }, [pending]);

  if (!pending) return null;
  const accept = () => {
    if (found) useEditor.getState().updateCustom(pending.id, found);
    closeDialog();
  };
  return (
    <Modal title={`Update ${pending.id} to version ${pending.version}`} onClose={closeDialog}
      subtitle="The node keeps its id and wiring; edges to ports the new version lacks are removed.">
      <ErrorLine text={error} />
      {!found && !error && <p className="muted" role="status">Checking the new version…</p>}
      {found && (
        <>
          <table className="dlg-table" data-testid="update-changes">
            <thead><tr><th>port</th><th>now</th><th>v{pending.version}</th></tr></thead>
            <tbody>
              {changes.map((c) => (
                <tr key={`${c.side}-${c.port}`} className={c.changed ? "changed" : ""}>
                  <th>{c.side} {c.port}</th>
                  <td className="mono">{c.before ?? "(new)"}</td>
                  <td className="mono">{c.after ?? "(gone)"}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {problems.length > 0 ? (
            <div className="dlg-problems">
              <p>With this version the graph would have {problems.length} problem{problems.length > 1 ? "s" : ""}:</p>
              <ul>{problems.slice(0, 8).map((p, i) => <li key={i}><b>{p.node ?? "graph"}</b>: {p.message}</li>)}</ul>
            </div>
          ) : <p className="muted">The graph stays valid with this version.</p>}
        </>
      )}
      <div className="dlg-actions">
        <button type="button" className="btn" onClick={closeDialog}>Cancel</button>
        <button type="button" className="btn btn-primary" disabled={!found} onClick={accept}>Update</button>
      </div>
    </Modal>
  );
}

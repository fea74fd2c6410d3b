// "Someone saved first": a save was refused as stale (409). Reload their version, or keep
// these changes as a copy of their own.
import { useState } from "react";

import { useEditor } from "../store/editor";
import * as session from "../store/session";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine } from "./common";
import { absoluteTime, errorText, relativeTime } from "./format";

export function ConflictDialog() {
  const conflict = useEditor((s) => s.conflict);
  const graph = useEditor((s) => s.graph);
  const [busy, setBusy] = useState<null | "reload" | "fork">(null);
  const [error, setError] = useState<string | null>(null);

  const act = async (which: "reload" | "fork") => {
    setBusy(which);
    setError(null);
    try {
      if (which === "reload") await session.reloadLatest();
      else await session.forkLocal();
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(null);
    }
  };

  return (
    <Modal
      title="Someone saved first"
      onClose={closeDialog}
      footer={
        <>
          <button type="button" className="btn" onClick={closeDialog} disabled={busy !== null}>Cancel</button>
          <button type="button" className="btn btn-danger-quiet" disabled={busy !== null} onClick={() => void act("reload")}>
            {busy === "reload" ? "Reloading…" : "Reload theirs"}
          </button>
          <button type="button" className="btn btn-primary" disabled={busy !== null} onClick={() => void act("fork")}>
            {busy === "fork" ? "Saving a copy…" : "Save mine as a copy"}
          </button>
        </>
      }
    >
      {conflict ? (
        <p>
          <strong>{conflict.author ?? "Someone"}</strong> saved version {conflict.number}
          {conflict.message ? <> (“{conflict.message}”)</> : null}{" "}
          <time dateTime={conflict.created_at} title={absoluteTime(conflict.created_at)}>
            {relativeTime(conflict.created_at)}
          </time>
          {graph ? `, while you were editing version ${graph.head}` : ""}. Your changes were not saved.
        </p>
      ) : (
        <p>This model was saved somewhere else (another tab or a script) since you opened it. Your changes were not saved.</p>
      )}
      <ul className="conflict-options">
        <li>
          <strong>Reload theirs</strong>: load version {conflict?.number ?? "the latest"}.{" "}
          <span className="dlg-warn-text">Your unsaved changes will be lost.</span>
        </li>
        <li>
          <strong>Save mine as a copy</strong>: keep your changes as a new model of your own, and open it.
        </li>
      </ul>
      <ErrorLine text={error} />
    </Modal>
  );
}

// "Save": an optional message (and, for a model never saved, its name); Enter saves.
import { type FormEvent, useState } from "react";

import { isDirty, useEditor } from "../store/editor";
import * as session from "../store/session";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine } from "./common";

export function SaveDialog() {
  const graph = useEditor((s) => s.graph);
  const readOnly = useEditor((s) => s.readOnly);
  const docName = useEditor((s) => s.doc.name);
  const dirty = useEditor(isDirty);
  const saving = useEditor((s) => s.saving);
  const [message, setMessage] = useState("");
  const [name, setName] = useState(docName || "Untitled model");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const working = busy || saving;

  if (readOnly) {
    return (
      <Modal title="Save" onClose={closeDialog}
        footer={<>
          <button type="button" className="btn" onClick={closeDialog}>Cancel</button>
          <button type="button" className="btn btn-primary" onClick={() => void session.forkShared()}>Fork</button>
        </>}>
        <p>This is a read-only view of someone else's model. Fork it to save a copy of your own.</p>
      </Modal>
    );
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (working) return;
    setError(null);
    const store = useEditor.getState();
    if (graph === null) {
      const clean = name.trim();
      if (!clean) {
        setError("Give the model a name.");
        return;
      }
      if (clean !== (store.doc.name ?? "")) store.setName(clean);
    }
    setBusy(true);
    let outcome: session.SaveOutcome;
    try {
      outcome = await session.save(message.trim() || undefined);
    } catch (caught) {
      outcome = "failed";
      store.notify({ kind: "error", text: `Not saved: ${(caught as Error).message}` });
    }
    setBusy(false);
    const after = useEditor.getState();
    if (outcome === "saved" || outcome === "unchanged") {
      if (after.dialog === "save") after.openDialog(null);
    } else if (outcome === "invalid" || outcome === "failed") {
      // Say it here, where the user is looking, rather than in a toast behind the dialog.
      const notice = after.notice;
      setError(notice?.text ?? "Not saved.");
      if (notice && notice.kind === "error") after.notify(null);
    }
    // "conflict": the store has already switched to the conflict dialog.
  };

  const summary =
    graph === null
      ? "The first save adds this model to your list as version 1."
      : dirty
        ? `Saves version ${graph.head + 1} of ${graph.name}.`
        : `Nothing has changed since version ${graph.head}: saving makes no new version.`;

  return (
    <Modal title="Save" onClose={closeDialog} subtitle={summary}>
      <form className="dlg-form" onSubmit={submit}>
        {graph === null ? (
          <label className="field">
            <span className="field-label">Name</span>
            <input
              type="text"
              name="name"
              value={name}
              maxLength={200}
              autoComplete="off"
              spellCheck={false}
              onChange={(event) => setName(event.target.value)}
            />
          </label>
        ) : null}
        <label className="field">
          <span className="field-label">Message</span>
          <input
            type="text"
            name="message"
            value={message}
            maxLength={500}
            autoComplete="off"
            placeholder="What changed? (optional)"
            onChange={(event) => setMessage(event.target.value)}
          />
        </label>
        <ErrorLine text={error} />
        <div className="dlg-actions">
          <span className="dlg-status" role="status" aria-live="polite">
            {working ? "saving…" : ""}
          </span>
          <button type="button" className="btn" onClick={closeDialog}>Cancel</button>
          <button type="submit" className="btn btn-primary" disabled={working}>Save</button>
        </div>
      </form>
    </Modal>
  );
}

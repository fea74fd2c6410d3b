// "Rename": the graph's title in the list (no new version; see docs/api.md).
import { type FormEvent, useState } from "react";

import { useEditor } from "../store/editor";
import * as session from "../store/session";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine } from "./common";
import { errorText } from "./format";

export function RenameDialog() {
  const current = useEditor((s) => s.graph?.name ?? s.doc.name ?? "Untitled model");
  const saved = useEditor((s) => s.graph !== null);
  const [name, setName] = useState(current);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const clean = name.trim();
    if (!clean) {
      setError("Give the model a name.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await session.rename(clean);
      closeDialog();
    } catch (caught) {
      setError(`Not renamed: ${errorText(caught)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      title="Rename"
      onClose={closeDialog}
      subtitle={saved ? "The title in your list and on share pages; it makes no new version." : undefined}
    >
      <form className="dlg-form" onSubmit={submit}>
        <label className="field">
          <span className="field-label">Name</span>
          <input type="text" name="name" value={name} maxLength={200} autoComplete="off" spellCheck={false}
            onChange={(event) => setName(event.target.value)} />
        </label>
        <ErrorLine text={error} />
        <div className="dlg-actions">
          <span className="dlg-status" role="status">{busy ? "renaming…" : ""}</span>
          <button type="button" className="btn" onClick={closeDialog}>Cancel</button>
          <button type="submit" className="btn btn-primary" disabled={busy}>Rename</button>
        </div>
      </form>
    </Modal>
  );
}

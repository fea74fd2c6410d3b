// "Import ONNX…": an ONNX file becomes a new model (its weights kept as the model's initial
// weights), opened at once. A file that cannot be imported shows every reason: the operators
// that map onto no block, by name and count, or what else is wrong (size, external data, the
// ONNX checker). Nothing is made then.
import { type FormEvent, useState } from "react";

import { ApiError } from "../api/client";
import * as session from "../store/session";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine } from "./common";
import { errorText } from "./format";

interface Refusal {
  summary: string;
  lines: string[];
}

/** What to show for a failed import: the operators without blocks, most frequent first, or
 * the problems the server listed. */
export function refusalOf(caught: unknown): Refusal {
  if (caught instanceof ApiError) {
    const unmapped = Object.entries(caught.body.unmapped ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    if (unmapped.length) {
      return { summary: "Not imported: these operators have no Shipyard block.", lines: unmapped.map(([op, n]) => `${n} × ${op}`) };
    }
    const problems = (caught.body.problems ?? []).map((p) => (p.node ? `${p.node}: ${p.message}` : p.message));
    if (problems.length) return { summary: "Not imported:", lines: problems };
  }
  return { summary: `Not imported: ${errorText(caught)}`, lines: [] };
}

export function ImportDialog() {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<Refusal | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) {
      setError("Choose an .onnx file.");
      return;
    }
    setBusy(true);
    setError(null);
    setRefusal(null);
    try {
      await session.importOnnx(file, name.trim() || undefined);
      closeDialog();
    } catch (caught) {
      setRefusal(refusalOf(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title="Import ONNX" onClose={closeDialog}
      subtitle="A new model from an ONNX file, its weights kept as the model's starting weights.">
      <form className="dlg-form" onSubmit={submit}>
        <label className="field">
          <span className="field-label">ONNX file</span>
          <input type="file" name="file" accept=".onnx,application/onnx"
            onChange={(event) => setFile(event.target.files?.[0] ?? null)} />
        </label>
        <label className="field">
          <span className="field-label">Name</span>
          <input type="text" name="name" value={name} maxLength={200} autoComplete="off" spellCheck={false}
            placeholder="default: the file's name" onChange={(event) => setName(event.target.value)} />
        </label>
        <ErrorLine text={error} />
        {refusal && (
          <div className="dlg-error" role="alert" data-testid="import-refusal">
            <p>{refusal.summary}</p>
            {refusal.lines.length > 0 && <ul>{refusal.lines.map((line) => <li key={line}>{line}</li>)}</ul>}
          </div>
        )}
        <div className="dlg-actions">
          <span className="dlg-status" role="status">{busy ? "importing…" : ""}</span>
          <button type="button" className="btn" onClick={closeDialog}>Cancel</button>
          <button type="submit" className="btn btn-primary" disabled={busy}>Import</button>
        </div>
      </form>
    </Modal>
  );
}

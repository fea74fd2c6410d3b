// "Upload your own data": a CSV (classification or regression) or a text for a character
// model, with where it comes from and its licence. Both are optional: a run's dataset
// manifest and model card say "not declared" for what is left out. It sits inside the
// start form, so it is a fieldset with its own button (Enter in its fields uploads, and
// does not start a run).
import { useId, useState } from "react";

import { api, ApiError } from "../api/client";
import type { Upload } from "../api/types";
import { describeError, runsStore } from "./store";

export const MAX_SOURCE = 500; // as the server's UploadIn
export const MAX_LICENCE = 200;

/** The server's refusal in one line: its per-field messages when it gives them. */
export function uploadError(error: unknown): string {
  if (error instanceof ApiError) {
    const fields = (error.body as { fields?: Record<string, string[] | string> }).fields;
    if (fields) {
      return Object.entries(fields).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : v}`).join("; ");
    }
  }
  return describeError(error);
}

export function UploadForm({ onUploaded }: { onUploaded(upload: Upload): void }) {
  const id = useId();
  const [file, setFile] = useState<File | null>(null);
  const [task, setTask] = useState("classification");
  const [target, setTarget] = useState("");
  const [source, setSource] = useState("");
  const [licence, setLicence] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const csv = file?.name.toLowerCase().endsWith(".csv") ?? false;

  const upload = async () => {
    if (!file) {
      setError("Choose a .csv or a text file.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const made = await api.createUpload(file, {
        ...(csv ? { task, target: target.trim() } : {}),
        source: source.trim(), licence: licence.trim(),
      });
      runsStore.setState((s) => ({ uploads: [made, ...s.uploads.filter((u) => u.id !== made.id)] }));
      setFile(null);
      setSource("");
      setLicence("");
      setTarget("");
      onUploaded(made);
    } catch (caught) {
      setError(uploadError(caught));
    } finally {
      setBusy(false);
    }
  };
  const enterUploads = (e: React.KeyboardEvent) => {
    if (e.key === "Enter") {
      e.preventDefault();
      void upload();
    }
  };

  return (
    <details className="runs-upload runs-field-wide" data-testid="upload-form">
      <summary>Upload your own data…</summary>
      <fieldset className="runs-upload-fields" disabled={busy}>
        <div className="runs-field runs-field-wide">
          <label htmlFor={`${id}-file`}>File</label>
          <input id={`${id}-file`} type="file" accept=".csv,.txt,text/csv,text/plain" data-testid="upload-file"
            onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          <span className="runs-field-hint">A CSV with a header row (numbers, the target last), or a text for a character model.</span>
        </div>
        {csv && (
          <>
            <div className="runs-field">
              <label htmlFor={`${id}-task`}>Task</label>
              <select id={`${id}-task`} value={task} onChange={(e) => setTask(e.target.value)}>
                <option value="classification">classification</option>
                <option value="regression">regression</option>
              </select>
            </div>
            <div className="runs-field">
              <label htmlFor={`${id}-target`}>Target column</label>
              <input id={`${id}-target`} type="text" value={target} maxLength={200} placeholder="the last one"
                onChange={(e) => setTarget(e.target.value)} onKeyDown={enterUploads} />
            </div>
          </>
        )}
        <div className="runs-field runs-field-wide">
          <label htmlFor={`${id}-source`}>Source (optional)</label>
          <input id={`${id}-source`} type="text" value={source} maxLength={MAX_SOURCE} data-testid="upload-source"
            placeholder="a web address (https://…) or words; not declared if empty"
            onChange={(e) => setSource(e.target.value)} onKeyDown={enterUploads} />
        </div>
        <div className="runs-field runs-field-wide">
          <label htmlFor={`${id}-licence`}>Licence (optional)</label>
          <input id={`${id}-licence`} type="text" value={licence} maxLength={MAX_LICENCE} data-testid="upload-licence"
            placeholder="e.g. CC-BY-4.0; not declared if empty"
            onChange={(e) => setLicence(e.target.value)} onKeyDown={enterUploads} />
        </div>
        <div className="runs-actions">
          <button type="button" onClick={() => void upload()} data-testid="upload-submit" aria-busy={busy || undefined}>
            Upload
          </button>
          {busy && <span className="runs-muted">Uploading…</span>}
        </div>
        {error && <p className="runs-error" role="alert" data-testid="upload-error">{error}</p>}
      </fieldset>
    </details>
  );
}

// The top bar: where you are (model, version, saved or not), undo and redo, and the
// actions: import, versions, save, share, code, run. A shared view says whose model it is.
import { useState } from "react";

import { LearnMenu } from "../paths/PathPanel";
import { isDirty, modelTitle, useEditor } from "../store/editor";
import { forkShared, rename } from "../store/session";

export function TopBar({ loginUrl, signupUrl, loggedIn }: { loginUrl: string; signupUrl: string; loggedIn: boolean }) {
  const graph = useEditor((s) => s.graph);
  const dirty = useEditor(isDirty);
  const saving = useEditor((s) => s.saving);
  const readOnly = useEditor((s) => s.readOnly);
  const owner = useEditor((s) => s.owner);
  const canUndo = useEditor((s) => s.history.past.length > 0 || s.history.gestureBase !== null);
  const canRedo = useEditor((s) => s.history.future.length > 0);
  const { undo, redo, openDialog, openDrawer } = useEditor.getState();
  const [editing, setEditing] = useState(false);
  const title = useEditor(modelTitle);

  let state: string;
  if (readOnly) state = `v${graph?.head} · read-only`;
  else if (saving) state = "saving…";
  else if (!graph) state = "not saved yet";
  else state = `v${graph.head} · ${dirty ? "unsaved changes" : "saved"}`;

  return (
    <header className="topbar">
      <a className="brand" href="/" title="Your models">⚓ Shipyard</a>
      <span className="muted">▸</span>
      {editing && !readOnly ? (
        <input
          className="title-input"
          autoFocus
          defaultValue={title}
          aria-label="Model name"
          onBlur={(e) => {
            setEditing(false);
            if (e.target.value.trim() && e.target.value !== title) void rename(e.target.value);
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter") (e.target as HTMLInputElement).blur();
            if (e.key === "Escape") setEditing(false);
          }}
        />
      ) : (
        <button className="title link" data-testid="graph-title" title={readOnly ? undefined : "Rename"} onClick={() => setEditing(true)}>
          {title}
        </button>
      )}
      <span className={`save-state ${dirty && !readOnly ? "dirty" : ""}`} data-testid="save-state">{state}</span>
      {readOnly && (
        <span className="readonly-banner" data-testid="readonly-banner">
          Shared by <strong>{owner}</strong> · read-only
          {loggedIn ? <button onClick={() => void forkShared()}>Fork</button>
            : <>
              <a className="button" href={loginUrl}>Log in to fork</a>
              <span className="muted">or</span>
              <a href={signupUrl}>Sign up</a>
            </>}
        </span>
      )}
      <span className="spacer" />
      {!readOnly && (
        <>
          <LearnMenu />
          <button className="quiet" onClick={undo} disabled={!canUndo} title="Undo (Ctrl/Cmd+Z)">Undo</button>
          <button className="quiet" onClick={redo} disabled={!canRedo} title="Redo (Ctrl/Cmd+Shift+Z)">Redo</button>
          <span className="sep" />
          {loggedIn && <button className="quiet" onClick={() => openDialog("import")} title="A new model from an ONNX file">Import ONNX…</button>}
          <button className="quiet" onClick={() => openDialog("versions")} disabled={!graph}>Versions</button>
          <button className="quiet" onClick={() => openDialog("save")} title="Save (Ctrl/Cmd+S)">Save</button>
          <button className="quiet" onClick={() => openDialog("share")}>Share</button>
        </>
      )}
      <button className="quiet" onClick={() => openDialog("code")}>Code</button>
      <button className="primary" onClick={() => (loggedIn || readOnly ? openDrawer(true, "run") : openDialog("signup"))}>▶ Run</button>
      <button className="icon" onClick={() => openDialog("shortcuts")} title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">?</button>
    </header>
  );
}

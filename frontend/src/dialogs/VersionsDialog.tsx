// "Versions": the saved versions, newest first; open one to see what it holds, restore one
// (as a new version: history is never rewritten).
import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { Version, VersionDetail } from "../api/types";
import { isDirty, useEditor } from "../store/editor";
import * as session from "../store/session";
import { plural } from "../ui/format";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine, SaveFirst } from "./common";
import { absoluteTime, errorText, relativeTime, summarize } from "./format";

type Detail = { state: "loading" } | { state: "error"; text: string } | { state: "ok"; version: VersionDetail };

export function VersionsDialog() {
  const graph = useEditor((s) => s.graph);
  const readOnly = useEditor((s) => s.readOnly);
  const dirty = useEditor(isDirty);
  const graphId = graph?.id ?? null;
  const head = graph?.head ?? null;

  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [opened, setOpened] = useState<number | null>(null);
  const [details, setDetails] = useState<Record<number, Detail>>({});
  const [confirming, setConfirming] = useState<number | null>(null);
  const [restoring, setRestoring] = useState<number | null>(null);

  useEffect(() => {
    if (graphId === null || readOnly) return;
    let live = true;
    setError(null);
    api.versions(graphId).then(
      (list) => live && setVersions([...list].sort((a, b) => b.number - a.number)),
      (caught) => live && setError(`The versions could not be loaded: ${errorText(caught)}`),
    );
    return () => {
      live = false;
    };
  }, [graphId, head, readOnly]);

  if (graph === null) {
    return (
      <Modal title="Versions" onClose={closeDialog}>
        <SaveFirst what="Every save makes a version you can come back to." />
      </Modal>
    );
  }
  if (readOnly) {
    return (
      <Modal title="Versions" onClose={closeDialog}>
        <p className="dlg-note">
          This shared link shows version {graph.head} of {graph.name}. Its history is visible to its owner only; fork it
          to keep your own.
        </p>
      </Modal>
    );
  }

  const toggle = (number: number) => {
    setConfirming(null);
    if (opened === number) {
      setOpened(null);
      return;
    }
    setOpened(number);
    if (details[number]?.state === "ok" || details[number]?.state === "loading") return;
    setDetails((d) => ({ ...d, [number]: { state: "loading" } }));
    api.version(graph.id, number).then(
      (version) => setDetails((d) => ({ ...d, [number]: { state: "ok", version } })),
      (caught) => setDetails((d) => ({ ...d, [number]: { state: "error", text: errorText(caught) } })),
    );
  };

  const restore = async (number: number) => {
    setConfirming(null);
    setRestoring(number);
    setError(null);
    try {
      await session.restore(number);
      closeDialog();
    } catch (caught) {
      setError(`Version ${number} was not restored: ${errorText(caught)}`);
    } finally {
      setRestoring(null);
    }
  };

  const askRestore = (number: number) => {
    if (isDirty(useEditor.getState())) setConfirming(number);
    else void restore(number);
  };

  return (
    <Modal
      title="Versions"
      onClose={closeDialog}
      size="wide"
      subtitle={
        <>
          {graph.name} · version {graph.head}
          {dirty ? <span className="tag tag-warn">unsaved changes</span> : null}
        </>
      }
    >
      <ErrorLine text={error} />
      {versions === null && !error ? <p className="dlg-muted">Loading versions…</p> : null}
      {versions !== null && versions.length === 0 ? <p className="dlg-muted">No versions yet.</p> : null}
      {versions !== null && versions.length > 0 ? (
        <ol className="version-list">
          {versions.map((v) => {
            const current = v.number === graph.head;
            const detail = details[v.number];
            return (
              <li
                key={v.number}
                className={`version-row${current ? " is-current" : ""}${opened === v.number ? " is-open" : ""}`}
                data-testid="version"
                data-version={v.number}
                aria-current={current ? "true" : undefined}
              >
                <div className="version-line">
                  <span className="version-number">v{v.number}</span>
                  <span className="version-main">
                    <span className={v.message ? "version-message" : "version-message dlg-muted"}>
                      {v.message || "no message"}
                    </span>
                    {current ? <span className="tag tag-accent">current</span> : null}
                    {v.restored_from !== null ? (
                      <span className="tag">restored from v{v.restored_from}</span>
                    ) : null}
                  </span>
                  <span className="version-meta">
                    {v.author ?? "deleted user"} ·{" "}
                    <time dateTime={v.created_at} title={absoluteTime(v.created_at)}>{relativeTime(v.created_at)}</time>
                  </span>
                  <span className="version-actions">
                    <button type="button" className="btn btn-small" aria-expanded={opened === v.number}
                      onClick={() => toggle(v.number)}>
                      {opened === v.number ? "Hide" : "Open"}
                    </button>
                    <button
                      type="button"
                      className="btn btn-small"
                      disabled={restoring !== null || (current && !dirty)}
                      title={current && !dirty ? "This is the version you are editing" : `Make version ${v.number}'s document the latest version`}
                      onClick={() => askRestore(v.number)}
                    >
                      {restoring === v.number ? "Restoring…" : "Restore"}
                    </button>
                  </span>
                </div>
                {confirming === v.number ? (
                  <div className="version-confirm" role="alert">
                    <span>
                      You have unsaved changes. Restoring version {v.number} replaces them in the editor and they are
                      lost.
                    </span>
                    <button type="button" className="btn btn-small btn-danger" onClick={() => void restore(v.number)}>
                      Discard changes and restore
                    </button>
                    <button type="button" className="btn btn-small" onClick={() => setConfirming(null)}>
                      Keep editing
                    </button>
                  </div>
                ) : null}
                {opened === v.number && detail ? <VersionSummary detail={detail} graphId={graph.id} number={v.number} /> : null}
              </li>
            );
          })}
        </ol>
      ) : null}
    </Modal>
  );
}

function VersionSummary({ detail, graphId, number }: { detail: Detail; graphId: number; number: number }) {
  if (detail.state === "loading") return <div className="version-detail dlg-muted">Loading version {number}…</div>;
  if (detail.state === "error") return <div className="version-detail dlg-error">{detail.text}</div>;
  const doc = detail.version.document;
  const s = summarize(doc);
  return (
    <div className="version-detail" data-testid="version-detail">
      <div>
        <strong>{doc.name || "Untitled model"}</strong>: {plural(s.nodes, "node")}
        {s.allNodes !== s.nodes ? ` (${s.allNodes.toLocaleString()} with those inside ${plural(s.repeats, "Repeat")})` : ""}
        {" · "}
        {plural(s.edges, "edge")}
      </div>
      {s.types.length > 0 ? (
        <div className="version-types dlg-muted">
          {s.types.map(([type, count]) => (count > 1 ? `${type} ×${count}` : type)).join(" · ")}
        </div>
      ) : null}
      {doc.description ? <div className="version-description">{doc.description}</div> : null}
      <div className="version-links">
        <a href={api.downloadUrl(graphId, "json", number)} download>Graph JSON</a>
        <a href={api.downloadUrl(graphId, "pytorch", number)} download>PyTorch</a>
      </div>
    </div>
  );
}

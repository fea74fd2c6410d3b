// "Share": read-only links to this graph. A link's token is shown once, when it is made
// (the server keeps only its hash), so older links show their prefix only.
import { useEffect, useRef, useState } from "react";

import { api } from "../api/client";
import type { Job, Share } from "../api/types";
import { isEnded } from "../runs/events";
import { PublishRun } from "../runs/PublishRun";
import { isDirty, useEditor } from "../store/editor";
import { Modal } from "../ui/Modal";
import { closeDialog, ErrorLine, SaveFirst } from "./common";
import { absoluteTime, copyText, errorText, isMac, relativeTime } from "./format";

export function ShareDialog() {
  const graph = useEditor((s) => s.graph);
  const readOnly = useEditor((s) => s.readOnly);
  const dirty = useEditor(isDirty);
  const graphId = graph?.id ?? null;

  const [links, setLinks] = useState<Share[] | null>(null);
  const [urls, setUrls] = useState<Record<number, string>>({});
  const [mode, setMode] = useState<"latest" | "pinned">("latest");
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (graphId === null || readOnly) return;
    let live = true;
    api.shares(graphId).then(
      (list) => live && setLinks(list),
      (caught) => live && setError(`The links could not be loaded: ${errorText(caught)}`),
    );
    return () => {
      live = false;
    };
  }, [graphId, readOnly]);

  if (readOnly) {
    return (
      <Modal title="Share" onClose={closeDialog}>
        <p className="dlg-note">
          You are looking at a shared link. Only the model's owner can make or revoke links; you can pass this one on.
        </p>
        <ShareUrl url={window.location.href} />
      </Modal>
    );
  }
  if (graph === null) {
    return (
      <Modal title="Share" onClose={closeDialog}>
        <SaveFirst what="A share link shows a saved version, so save it before you share it." />
      </Modal>
    );
  }

  const create = async () => {
    setCreating(true);
    setError(null);
    try {
      const created = await api.share(graph.id, mode === "pinned" ? graph.head : undefined);
      const { token: _token, url, ...link } = created;
      void _token;
      setUrls((u) => ({ ...u, [created.id]: url }));
      setLinks((list) => [link, ...(list ?? []).filter((l) => l.id !== link.id)]);
    } catch (caught) {
      setError(`No link was made: ${errorText(caught)}`);
    } finally {
      setCreating(false);
    }
  };

  const revoke = async (link: Share) => {
    setError(null);
    try {
      await api.revokeShare(graph.id, link.id);
      const now = new Date().toISOString();
      setLinks((list) => (list ?? []).map((l) => (l.id === link.id ? { ...l, revoked_at: now } : l)));
    } catch (caught) {
      setError(`The link was not revoked: ${errorText(caught)}`);
    }
  };

  return (
    <Modal title="Share" onClose={closeDialog} size="wide"
      subtitle="Anyone with a link can view this model read-only and download it, with no account. To fork it (a copy of their own to edit), they log in or sign up.">
      <div className="share-create">
        <fieldset className="share-mode">
          <legend className="visually-hidden">What the link shows</legend>
          <label>
            <input type="radio" name="share-mode" value="latest" checked={mode === "latest"}
              onChange={() => setMode("latest")} />
            Follow the latest version
          </label>
          <label>
            <input type="radio" name="share-mode" value="pinned" checked={mode === "pinned"}
              onChange={() => setMode("pinned")} />
            Pin version {graph.head}
          </label>
        </fieldset>
        <button type="button" className="btn btn-primary" disabled={creating} onClick={() => void create()}>
          {creating ? "Creating…" : "Create link"}
        </button>
      </div>
      {dirty ? (
        <p className="dlg-note dlg-note-warn">
          Links show saved versions: your unsaved changes are not shared until you{" "}
          <button type="button" className="btn-link" onClick={() => useEditor.getState().openDialog("save")}>save</button>.
        </p>
      ) : null}
      <ErrorLine text={error} />
      {links === null && !error ? <p className="dlg-muted">Loading links…</p> : null}
      {links !== null && links.length === 0 ? <p className="dlg-muted">No links yet.</p> : null}
      {links !== null && links.length > 0 ? (
        <ul className="share-list">
          {links.map((link) => (
            <ShareRow key={link.id} link={link} url={urls[link.id] ?? null} onRevoke={() => revoke(link)} />
          ))}
        </ul>
      ) : null}
      <PublishedRuns graphId={graph.id} />
    </Modal>
  );
}

/** The graph's finished runs, each with its "published" switch: who has a link sees those. */
function PublishedRuns({ graphId }: { graphId: number }) {
  const [runs, setRuns] = useState<Job[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.jobs(graphId).then(
      (list) => live && setRuns(list.filter((job) => isEnded(job.status))),
      (caught) => live && setError(`The runs could not be loaded: ${errorText(caught)}`),
    );
    return () => {
      live = false;
    };
  }, [graphId]);
  return (
    <section className="share-runs" aria-label="Runs on the links">
      <h3>Runs on the links</h3>
      <p className="dlg-muted">Visitors of a link can watch the runs you publish: their charts, samples and downloads.</p>
      <ErrorLine text={error} />
      {runs !== null && runs.length === 0 ? <p className="dlg-muted">No finished runs yet.</p> : null}
      {runs !== null && runs.length > 0 ? (
        <ul className="share-list">
          {runs.map((job) => (
            <li key={job.id} className="share-row" data-testid="share-run" data-run={job.id}>
              <div className="share-meta">
                <span>Run #{job.id}</span>
                <span aria-hidden="true">·</span>
                <span>v{job.version} · {job.dataset} · {job.status}</span>
                <PublishRun run={job} onChange={(published) =>
                  setRuns((list) => (list ?? []).map((r) => (r.id === job.id ? { ...r, published } : r)))} />
              </div>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

function ShareRow({ link, url, onRevoke }: { link: Share; url: string | null; onRevoke(): Promise<void> }) {
  const [revoking, setRevoking] = useState(false);
  const revoked = link.revoked_at !== null;
  const what = link.version === null ? "follows the latest version" : `pinned to v${link.version}`;
  return (
    <li className={`share-row${revoked ? " is-revoked" : ""}`} data-testid="share-link"
      data-state={revoked ? "revoked" : "active"}>
      {url && !revoked ? (
        <ShareUrl url={url} />
      ) : (
        <div className="share-prefix">
          <code>{link.prefix}…</code>
          {!revoked ? <span className="dlg-muted">the full link was shown when it was made</span> : null}
        </div>
      )}
      <div className="share-meta">
        <span>{what}</span>
        <span aria-hidden="true">·</span>
        <span>
          created{" "}
          <time dateTime={link.created_at} title={absoluteTime(link.created_at)}>{relativeTime(link.created_at)}</time>
        </span>
        {revoked ? (
          <span className="tag tag-error">
            revoked <time dateTime={link.revoked_at!} title={absoluteTime(link.revoked_at!)}>{relativeTime(link.revoked_at!)}</time>
          </span>
        ) : (
          <button type="button" className="btn btn-small btn-danger-quiet" disabled={revoking}
            onClick={async () => {
              setRevoking(true);
              await onRevoke();
              setRevoking(false);
            }}>
            {revoking ? "Revoking…" : "Revoke"}
          </button>
        )}
      </div>
    </li>
  );
}

/** A read-only field holding a URL, with a Copy button. */
export function ShareUrl({ url }: { url: string }) {
  const field = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<boolean | null>(null);
  useEffect(() => {
    if (copied === null) return;
    const timer = setTimeout(() => setCopied(null), 2000);
    return () => clearTimeout(timer);
  }, [copied]);
  return (
    <div className="share-url">
      <input ref={field} type="text" readOnly value={url} aria-label="Link" spellCheck={false}
        onFocus={(event) => event.currentTarget.select()} />
      <button type="button" className="btn btn-small"
        onClick={async () => {
          const ok = await copyText(url, field.current);
          if (!ok) field.current?.select();
          setCopied(ok);
        }}>
        {copied === true ? "Copied" : copied === false ? `Press ${isMac() ? "⌘" : "Ctrl+"}C` : "Copy"}
      </button>
    </div>
  );
}

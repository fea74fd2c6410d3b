// The learning path beside the inspector: step N of M, what it explains, what to build, and
// whether it is done (✓), with Check, Show me, back and next. A canvas step is checked on
// the user's own canvas; a run step says what to press and can open the drawer there.
import "./paths.css";

import { useEffect, useRef, useState } from "react";

import { runsStore, useRuns } from "../runs/store";
import { useEditor } from "../store/editor";
import { Markdown } from "../ui/Markdown";
import type { PathStep } from "./api";
import { runStepHint, tabFor } from "./rules";
import { drawerView, revealNode, usePaths } from "./store";

export function PathPanel() {
  const path = usePaths((s) => s.path);
  const error = usePaths((s) => s.error);
  if (error && !path) {
    return (
      <aside className="path-panel" aria-label="Learning path" data-testid="path-panel">
        <header className="path-head">
          <span className="bad">{error}</span>
          <span className="spacer" />
          <button type="button" className="icon" aria-label="Close the path" onClick={() => usePaths.setState({ error: null })}>✕</button>
        </header>
      </aside>
    );
  }
  if (!path) return null;
  return <OpenPath />;
}

function OpenPath() {
  const path = usePaths((s) => s.path)!;
  const index = usePaths((s) => s.index);
  const done = usePaths((s) => s.done);
  const storage = usePaths((s) => s.storage);
  const saveError = usePaths((s) => s.saveError);
  const step = path.steps[index];
  const isDone = done.includes(step.id);
  const complete = path.steps.every((s) => done.includes(s.id));
  const body = useRef<HTMLDivElement>(null);
  const { go, close } = usePaths.getState();

  // A new step starts at its top.
  useEffect(() => {
    if (body.current) body.current.scrollTop = 0;
  }, [index]);

  return (
    <aside className="path-panel" aria-label="Learning path" data-testid="path-panel">
      <header className="path-head">
        <strong className="path-title" title={path.summary}>{path.title}</strong>
        <span className="spacer" />
        <button type="button" className="icon" aria-label="Close the path" title="Close (your progress is kept)" onClick={close}>✕</button>
      </header>
      <div className="path-progress">
        <span data-testid="path-step-count">Step {index + 1} of {path.steps.length}</span>
        <span className="muted" data-testid="path-done-count">{done.length} done</span>
        <ol className="path-dots" aria-label="Steps">
          {path.steps.map((s, i) => (
            <li key={s.id}>
              <button
                type="button"
                className={`path-dot${done.includes(s.id) ? " done" : ""}${i === index ? " current" : ""}`}
                aria-label={`Step ${i + 1}: ${s.title}${done.includes(s.id) ? " (done)" : ""}`}
                aria-current={i === index ? "step" : undefined}
                title={s.title}
                onClick={() => go(i)}
              />
            </li>
          ))}
        </ol>
      </div>
      <div className="path-body" ref={body}>
        {complete && (
          <p className="path-complete ok" data-testid="path-complete">
            ✓ Path complete: every step is done. Go back to any step to read it again.
          </p>
        )}
        <h2 className="path-step-title" data-testid="path-step-title">
          {step.title}
          {isDone && <span className="ok path-tick" data-testid="path-step-done" aria-label="done"> ✓</span>}
        </h2>
        <Markdown text={step.text} />
        <div className="path-task">
          <h3>Your task</h3>
          <Markdown text={step.task} />
        </div>
        {step.check === "canvas" ? <CanvasCheck step={step} done={isDone} /> : <RunCheck step={step} done={isDone} />}
      </div>
      <footer className="path-foot">
        <button type="button" className="quiet" data-testid="path-back" disabled={index === 0} onClick={() => go(index - 1)}>‹ Back</button>
        <span className="spacer" />
        {storage === "browser" && <span className="muted small" title="Log in to keep your progress in your account">kept in this browser</span>}
        {saveError && <span className="bad small" title={saveError}>not saved</span>}
        <span className="spacer" />
        <button
          type="button"
          className={isDone && index < path.steps.length - 1 ? "primary" : "quiet"}
          data-testid="path-next"
          disabled={index === path.steps.length - 1}
          onClick={() => go(index + 1)}
        >
          Next ›
        </button>
      </footer>
    </aside>
  );
}

function CanvasCheck({ step, done }: { step: PathStep; done: boolean }) {
  const result = usePaths((s) => (s.result?.step === step.id ? s.result : null));
  const checking = usePaths((s) => s.checking);
  const readOnly = useEditor((s) => s.readOnly);
  const { check, showMe } = usePaths.getState();
  const failed = result && result.shown && !result.result.passed ? result.result : null;
  return (
    <div className="path-check">
      <div className="path-actions">
        <button type="button" className="primary" data-testid="path-check" disabled={checking} onClick={() => void check()}>
          {checking ? "Checking…" : "Check"}
        </button>
        {step.solution && !readOnly && (
          <button
            type="button"
            className="quiet"
            data-testid="path-show-me"
            title="Replace the canvas with this step done (Undo brings yours back)"
            onClick={() => showMe()}
          >
            Show me
          </button>
        )}
      </div>
      <div className="path-result" data-testid="path-result" aria-live="polite">
        {done ? <span className="ok">✓ done</span>
          : failed ? (
            <span className="bad">
              {failed.message}
              {failed.node && (
                <> <button type="button" className="link" onClick={() => revealNode(failed.node!)}>Show {failed.node}</button></>
              )}
            </span>
          ) : <span className="muted">Build it on the canvas; the panel notices when it is done.</span>}
      </div>
    </div>
  );
}

function RunCheck({ step, done }: { step: PathStep; done: boolean }) {
  const loggedIn = usePaths((s) => s.loggedIn);
  const graph = useEditor((s) => s.graph);
  const drawerOpen = useEditor((s) => s.drawerOpen);
  // The hint follows the run: its status, step and what it reported.
  const job = useRuns((s) => s.job);
  const tab = useRuns((s) => s.tab);
  const derived = useRuns((s) => s.derived);
  const hint = runStepHint(step.check, drawerView({ job, tab, derived }, { graph, drawerOpen }, loggedIn));
  const readOnly = useEditor((s) => s.readOnly);
  const check = usePaths((s) => (s.result?.step === step.id ? s.result.result : null));
  const notReady = step.check === "run" && !done && check && !check.passed ? check : null;
  const [asked, setAsked] = useState(false);
  const openDrawer = () => {
    setAsked(true);
    useEditor.getState().openDrawer(true);
    runsStore.getState().setTab(tabFor(step.check));
  };
  return (
    <div className="path-check">
      <div className="path-result" data-testid="path-result" aria-live="polite">
        {done ? <span className="ok">✓ done</span> : <span>{hint}</span>}
      </div>
      {notReady && (
        <p className="bad path-not-ready" data-testid="path-not-ready">
          Before training: {notReady.message}
          {notReady.node && <> <button type="button" className="link" onClick={() => revealNode(notReady.node!)}>Show {notReady.node}</button></>}
          {!readOnly && <> <button type="button" className="link" data-testid="path-show-me" onClick={() => usePaths.getState().showMe()}>Show me the model</button></>}
        </p>
      )}
      {!done && loggedIn && (
        <div className="path-actions">
          <button type="button" className={asked ? "quiet" : "primary"} data-testid="path-open-drawer" onClick={openDrawer}>
            {step.check === "run" ? "Open the run form" : step.check === "attention" ? "Open the attention maps" : "Open the samples"}
          </button>
        </div>
      )}
    </div>
  );
}

/** The top bar's "Learn": the paths to follow, opened in the panel. */
export function LearnMenu() {
  const [open, setOpen] = useState(false);
  const list = usePaths((s) => s.list);
  const listError = usePaths((s) => s.listError);
  const current = usePaths((s) => s.path?.name ?? null);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    if (list === null) void usePaths.getState().loadList();
    const away = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    const escape = (e: KeyboardEvent) => {
      if (e.key === "Escape") setOpen(false);
    };
    window.addEventListener("mousedown", away);
    window.addEventListener("keydown", escape);
    return () => {
      window.removeEventListener("mousedown", away);
      window.removeEventListener("keydown", escape);
    };
  }, [open, list]);

  return (
    <div className="learn" ref={root}>
      <button type="button" className="quiet" data-testid="learn-button" aria-expanded={open} aria-haspopup="true" onClick={() => setOpen(!open)}>
        Learn
      </button>
      {open && (
        <div className="learn-list" data-testid="learn-list" aria-label="Learning paths">
          {listError && <p className="bad small">{listError}</p>}
          {list === null && !listError && <p className="muted small">Loading…</p>}
          {list?.map((p) => (
            <button
              key={p.name}
              type="button"
              className="learn-item"
              data-path={p.name}
              aria-current={p.name === current ? "true" : undefined}
              onClick={() => {
                setOpen(false);
                void usePaths.getState().open(p.name);
              }}
            >
              <strong>{p.title}</strong>
              <span className="muted small">{p.summary} · {p.steps} steps</span>
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

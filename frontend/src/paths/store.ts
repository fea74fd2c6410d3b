// The learning path open in the editor: which path, which step, which steps are done, and
// the last check's answer. A canvas step is checked by the server on the user's own
// document (on "Check", and by itself ~800 ms after the canvas changes); a run step is done
// by what the runs drawer shows (rules.ts). Progress is the account's (GET/PUT
// /api/paths/{name}/progress) and also kept in this browser, which is all an anonymous
// visitor has; a saved model remembers which path it was built on, so reopening it resumes.
import { create } from "zustand";

import { ApiError } from "../api/client";
import type { GraphDocument } from "../api/types";
import { autoLayoutAll } from "../editor/layout";
import { requestFit } from "../editor/view";
import { blankDocument, graphAt } from "../graph/ops";
import { runsStore, type RunsState } from "../runs/store";
import { useEditor, type EditorState } from "../store/editor";
import { type CheckResult, type PathDetail, type PathSummary, type PathsApi, type Progress, pathsApi } from "./api";
import { type DrawerView, runStepDone } from "./rules";

/** How long the canvas must rest before it is checked by itself. */
export const AUTO_CHECK_MS = 800;

export const progressKey = (name: string) => `shipyard.path.progress.${name}`;
export const graphPathKey = (graphId: number) => `shipyard.path.graph.${graphId}`;

export interface PathsState {
  loggedIn: boolean;
  list: PathSummary[] | null;
  listError: string | null;

  path: PathDetail | null;
  loading: boolean;
  error: string | null;
  /** the step shown */
  index: number;
  /** ids of the steps done, in the order they were done */
  done: string[];
  /** the last check of the step shown; `shown` when the user asked (an automatic check
   * that fails says nothing: the user is still building) */
  result: { step: string; result: CheckResult; shown: boolean } | null;
  /** the step whose check the user asked for: from then on its automatic checks say what
   * they find too (a check asked for just before the canvas rested is not lost to the
   * automatic one, and the answer stays current while the user fixes it) */
  asked: string | null;
  checking: boolean;
  /** where progress is kept: the account, or (anonymous) only this browser */
  storage: "account" | "browser";
  saveError: string | null;

  setLoggedIn(loggedIn: boolean): void;
  loadList(): Promise<void>;
  open(name: string): Promise<void>;
  close(): void;
  go(index: number): void;
  /** Ask the server whether the canvas does the step shown. */
  check(opts?: { auto?: boolean }): Promise<CheckResult | null>;
  /** Replace the canvas by the step's solution, as one undoable change. */
  showMe(): boolean;
  complete(step: string): void;
}

export interface PathsDeps {
  api: PathsApi;
  storage: Pick<Storage, "getItem" | "setItem" | "removeItem">;
}

function readJson(storage: PathsDeps["storage"], key: string): unknown {
  try {
    const raw = storage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(storage: PathsDeps["storage"], key: string, value: string | null): void {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    // not kept across reloads: the account's copy (if any) still is
  }
}

/** Progress as stored, keeping only what names steps of `path`. */
export function cleanProgress(raw: unknown, path: PathDetail): Progress {
  const ids = new Set(path.steps.map((s) => s.id));
  const value = raw && typeof raw === "object" ? (raw as Partial<Progress>) : {};
  const done = Array.isArray(value.done) ? value.done.filter((id): id is string => typeof id === "string" && ids.has(id)) : [];
  const current = typeof value.current === "string" && ids.has(value.current) ? value.current : null;
  return { done: [...new Set(done)], current };
}

/** Where to resume: the stored step, else the first step not done, else the last. */
export function resumeIndex(path: PathDetail, progress: Progress): number {
  const stored = path.steps.findIndex((s) => s.id === progress.current);
  if (stored >= 0) return stored;
  const open = path.steps.findIndex((s) => !progress.done.includes(s.id));
  return open >= 0 ? open : Math.max(0, path.steps.length - 1);
}

const forbidden = (error: unknown) => error instanceof ApiError && (error.status === 401 || error.status === 403);

/** Show a node the server named (`attn`, or `blocks/attn` inside a Repeat): enter its
 * Repeat and select it. Does nothing when the canvas has no such node. */
export function revealNode(path: string): void {
  const parts = path.split("/").filter(Boolean);
  const editor = useEditor.getState();
  try {
    const graph = graphAt(editor.doc, parts.slice(0, -1));
    if (!graph.nodes.some((n) => n.id === parts[parts.length - 1])) return;
  } catch {
    return;
  }
  editor.leaveTo(0);
  for (const id of parts.slice(0, -1)) useEditor.getState().enter(id);
  useEditor.getState().select([parts[parts.length - 1]]);
}

export function createPathsStore(deps: PathsDeps = { api: pathsApi, storage: localStorage }) {
  let checks = 0; // the latest check wins; an answer to an older one is dropped

  return create<PathsState>()((set, get) => {
    const persist = () => {
      const { path, index, done, storage } = get();
      if (!path) return;
      const progress: Progress = { done, current: path.steps[index]?.id ?? null };
      write(deps.storage, progressKey(path.name), JSON.stringify(progress));
      if (storage !== "account") return;
      deps.api.saveProgress(path.name, progress).then(
        () => set({ saveError: null }),
        (error: unknown) => {
          if (forbidden(error)) set({ storage: "browser", saveError: null });
          else set({ saveError: `progress is kept only in this browser: ${(error as Error).message}` });
        },
      );
    };

    return {
      loggedIn: false,
      list: null,
      listError: null,
      path: null,
      loading: false,
      error: null,
      index: 0,
      done: [],
      result: null,
      asked: null,
      checking: false,
      storage: "browser",
      saveError: null,

      setLoggedIn: (loggedIn) => set({ loggedIn }),

      loadList: async () => {
        try {
          set({ list: await deps.api.list(), listError: null });
        } catch (error) {
          set({ listError: (error as Error).message });
        }
      },

      open: async (name) => {
        set({ loading: true, error: null });
        let path: PathDetail;
        try {
          path = await deps.api.detail(name);
        } catch (error) {
          set({ loading: false, error: `The path ${name} could not be opened: ${(error as Error).message}` });
          return;
        }
        const local = cleanProgress(readJson(deps.storage, progressKey(path.name)), path);
        let progress = local;
        let storage: PathsState["storage"] = "browser";
        let merge = false;
        if (get().loggedIn) {
          try {
            const server = cleanProgress(await deps.api.progress(path.name), path);
            storage = "account";
            // A new account takes over what its visitor did in this browser before signing up.
            merge = server.done.length === 0 && server.current === null && (local.done.length > 0 || local.current !== null);
            progress = merge ? local : server;
          } catch (error) {
            if (!forbidden(error)) set({ saveError: `progress is kept only in this browser: ${(error as Error).message}` });
          }
        }
        set({
          path, loading: false, index: resumeIndex(path, progress), done: progress.done,
          result: null, asked: null, checking: false, storage,
        });
        useEditor.setState({ suggestedDataset: path.dataset });
        rememberForGraph(deps.storage, useEditor.getState().graph?.id ?? null, path.name);
        if (merge) persist();
      },

      close: () => {
        const graphId = useEditor.getState().graph?.id ?? null;
        if (graphId !== null) write(deps.storage, graphPathKey(graphId), null);
        checks++;
        set({ path: null, result: null, asked: null, checking: false, error: null });
      },

      go: (index) => {
        const { path } = get();
        if (!path || index < 0 || index >= path.steps.length || index === get().index) return;
        checks++;
        set({ index, result: null, asked: null, checking: false });
        persist();
      },

      check: async ({ auto = false } = {}) => {
        const { path, index } = get();
        const step = path?.steps[index];
        // A canvas step is done by its check; the run step's check says whether the canvas
        // is ready to train (the steps after it are judged by the drawer alone).
        if (!path || !step || (step.check !== "canvas" && step.check !== "run")) return null;
        const mine = ++checks;
        set(auto ? { checking: true } : { checking: true, asked: step.id });
        let result: CheckResult;
        try {
          result = await deps.api.check(path.name, step.id, useEditor.getState().doc);
        } catch (error) {
          if (mine !== checks) return null;
          set({ checking: false });
          if (!auto) {
            set({ result: { step: step.id, shown: true, result: { passed: false, node: null, message: `The check could not run: ${(error as Error).message}` } } });
          }
          return null;
        }
        if (mine !== checks) return null;
        // A failure found by itself is quiet while the user builds (unless they asked for this
        // step's check), but not before a run.
        const shown = !auto || result.passed || step.check === "run" || get().asked === step.id;
        set({ checking: false, result: { step: step.id, result, shown } });
        if (result.passed && step.check === "canvas") get().complete(step.id);
        else if (!auto && result.node) revealNode(result.node);
        return result;
      },

      showMe: () => {
        const { path, index } = get();
        const solution = path?.steps[index]?.solution;
        if (!solution) return false;
        const editor = useEditor.getState();
        // The user's name for the model stays; an untitled one takes the solution's.
        const untitled = !editor.doc.name || editor.doc.name === blankDocument().name;
        const doc: GraphDocument = { ...autoLayoutAll(solution, editor.catalog), name: untitled ? solution.name : editor.doc.name };
        if (!editor.replaceDocument(doc)) return false;
        editor.notify({ kind: "info", text: "Show me put this step's solution on the canvas, with its names; Undo (Ctrl/Cmd+Z) brings your own back." });
        requestFit(200);
        return true;
      },

      complete: (step) => {
        if (get().done.includes(step)) return;
        set({ done: [...get().done, step] });
        persist();
      },
    };
  });
}

function rememberForGraph(storage: PathsDeps["storage"], graphId: number | null, name: string): void {
  if (graphId !== null) write(storage, graphPathKey(graphId), name);
}

export const usePaths = createPathsStore();

/** What the run steps see of the drawer and the editor now. */
export function drawerView(runs: Pick<RunsState, "job" | "tab" | "derived">, editor: Pick<EditorState, "graph" | "drawerOpen">, loggedIn: boolean): DrawerView {
  return {
    graphId: editor.graph?.id ?? null,
    loggedIn,
    drawerOpen: editor.drawerOpen,
    tab: runs.tab,
    job: runs.job,
    series: runs.derived.series,
    attentionModules: Object.keys(runs.derived.attention).length,
    samples: runs.derived.samples.length,
  };
}

/**
 * Keep the open path in step with the editor: check a canvas step (and whether the canvas is
 * ready for the run step) ~800 ms after the model changes (or the step does), mark a run step done when the drawer shows it, and remember
 * the path for the model once it is saved. Returns the unsubscribe.
 */
export function followPath(paths = usePaths, delayMs = AUTO_CHECK_MS): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastNodes: unknown = null;
  let lastEdges: unknown = null;

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const s = paths.getState();
      const step = s.path?.steps[s.index];
      const editor = useEditor.getState();
      if (!step || (step.check !== "canvas" && step.check !== "run") || s.done.includes(step.id) || !editor.ready || editor.readOnly) return;
      void s.check({ auto: true });
    }, delayMs);
  };

  const judgeRun = () => {
    const s = paths.getState();
    const step = s.path?.steps[s.index];
    if (!step || step.check === "canvas" || s.done.includes(step.id)) return;
    if (runStepDone(step.check, drawerView(runsStore.getState(), useEditor.getState(), s.loggedIn))) s.complete(step.id);
  };

  const stopDoc = useEditor.subscribe((s) => s.doc, (doc) => {
    // A move changes only the layout: what the check looks at stays the same.
    if (doc.nodes === lastNodes && doc.edges === lastEdges) return;
    lastNodes = doc.nodes;
    lastEdges = doc.edges;
    schedule();
  });
  const stopEditor = useEditor.subscribe((s) => [s.drawerOpen, s.graph?.id] as const, () => {
    judgeRun();
    const s = paths.getState();
    const graphId = useEditor.getState().graph?.id ?? null;
    if (s.path) rememberForGraph(localStorage, graphId, s.path.name);
  }, { equalityFn: (a, b) => a[0] === b[0] && a[1] === b[1] });
  const stopRuns = runsStore.subscribe(judgeRun);
  const stopPaths = paths.subscribe((s, before) => {
    if (s.path !== before.path || s.index !== before.index) {
      schedule();
      judgeRun();
    }
  });
  return () => {
    clearTimeout(timer);
    stopDoc();
    stopEditor();
    stopRuns();
    stopPaths();
  };
}

/** The path the page opens with: `?path=` in its address, else the one the saved model was
 * built on (remembered in this browser). */
export function pathToOpen(search: string, graphId: number | null, storage: PathsDeps["storage"] = localStorage): string | null {
  const asked = new URLSearchParams(search).get("path");
  if (asked) return asked;
  if (graphId === null) return null;
  try {
    return storage.getItem(graphPathKey(graphId));
  } catch {
    return null;
  }
}

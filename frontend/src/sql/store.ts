// The SQL console's state: its text and history, the last answer, the schema for completion,
// which model it runs on (the editor's, or the weights of the run open in the drawer), and
// the nodes the last change touched (highlighted on the canvas for a few seconds).
//
// A script that changed the editor's graph is applied at once: the document the server gave
// back replaces the editor's as ONE undo step, and when the server saved it as a new version
// the editor is on that version (a later save does not conflict).
import { create } from "zustand";

import { ApiError } from "../api/client";
import type { GraphDocument, Version } from "../api/types";
import { shareUnchanged } from "../graph/ops";
import { useEditor } from "../store/editor";
import { type SqlErrorBody, type SqlResult, type SqlSchema, sqlApi, sqlError } from "./api";

export const HISTORY_KEY = "shipyard.sql.history";
export const HISTORY_LIMIT = 50;
/** How long the canvas highlights the nodes a script touched. */
export const HIGHLIGHT_MS = 4000;

export type SqlOutcome =
  | { kind: "result"; script: string; result: SqlResult; applied: boolean }
  | { kind: "error"; script: string; error: SqlErrorBody };

export interface SqlState {
  open: boolean;
  text: string;
  running: boolean;
  outcome: SqlOutcome | null;
  /** Scripts run, oldest first (kept in this browser). */
  history: string[];
  /** Where Ctrl+↑/↓ is in the history; null while editing a new script. */
  historyAt: number | null;
  /** The text being edited when browsing began, given back past the newest entry. */
  stash: string;
  /** The schema for completion and examples, by whether it has the weight tables. */
  schemas: { plain: SqlSchema | null; trained: SqlSchema | null };
  schemaError: string | null;
  /** The run whose trained model the console works on; null: the editor's graph. */
  job: number | null;
  /** Paths of the nodes the last change touched (and their top-level nodes). */
  touched: ReadonlySet<string>;
  /** Counts requests to focus the text area (the shortcut, an example). */
  focusRequests: number;

  setOpen(open: boolean): void;
  toggle(): void;
  setText(text: string): void;
  setJob(job: number | null): void;
  /** Run the text (or `script`) on the console's model. */
  run(script?: string): Promise<void>;
  /** Ctrl+↑ (-1, older) and Ctrl+↓ (+1, newer). */
  browse(step: -1 | 1): void;
  loadSchema(trained: boolean): Promise<void>;
  clearTouched(): void;
}

function readHistory(): string[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? "[]");
    return Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === "string").slice(-HISTORY_LIMIT) : [];
  } catch {
    return [];
  }
}

function writeHistory(history: string[]): void {
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(history));
  } catch {
    // not kept across reloads
  }
}

/** The touched paths and the top-level node of each (`blocks/attn` marks `blocks` too). */
export function touchedPaths(paths: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const path of paths) {
    out.add(path);
    out.add(path.split("/")[0]);
  }
  return out;
}

let highlightTimer: ReturnType<typeof setTimeout> | undefined;

export function createSqlStore() {
  return create<SqlState>()((set, get) => ({
    open: false,
    text: "",
    running: false,
    outcome: null,
    history: readHistory(),
    historyAt: null,
    stash: "",
    schemas: { plain: null, trained: null },
    schemaError: null,
    job: null,
    touched: new Set(),
    focusRequests: 0,

    setOpen: (open) => set((s) => ({ open, focusRequests: open ? s.focusRequests + 1 : s.focusRequests })),
    toggle: () => get().setOpen(!get().open),
    setText: (text) => set({ text, historyAt: null }),
    setJob: (job) => set({ job }),

    run: async (script) => {
      const sql = (script ?? get().text).trim();
      if (!sql || get().running) return;
      const history = [...get().history.filter((h) => h !== sql), sql].slice(-HISTORY_LIMIT);
      writeHistory(history);
      set({ running: true, history, historyAt: null });
      const editor = useEditor.getState();
      const job = get().job;
      const sent: GraphDocument = editor.doc;
      try {
        let result: SqlResult;
        if (job !== null) result = await sqlApi.job(job, sql);
        else if (editor.shareToken) result = await sqlApi.shared(editor.shareToken, sql);
        else if (editor.graph) {
          result = await sqlApi.graph(editor.graph.id, { sql, document: sent, base_version: editor.graph.head });
        } else result = await sqlApi.draft({ sql, document: sent });
        // A trained run's change is a derived model of its own: the canvas stays as it is.
        const applied = job === null && result.document !== null && applyDocument(result);
        // A change of the weights alone (a model with weights) saved the document sent.
        if (job === null && !applied && result.version && useEditor.getState().doc === sent) {
          const after = useEditor.getState();
          if (after.graph) {
            after.markSaved({ ...after.graph, head: result.version.number, weights: result.version.initial_weights }, sent);
          }
        }
        set({ outcome: { kind: "result", script: sql, result, applied } });
      } catch (error) {
        const body = sqlError(error);
        if (error instanceof ApiError && error.status === 409 && body.current_version) {
          useEditor.getState().setConflict(body.current_version as Version);
        }
        set({ outcome: { kind: "error", script: sql, error: body } });
      } finally {
        set({ running: false });
      }
    },

    browse: (step) => {
      const { history, historyAt, text, stash } = get();
      if (history.length === 0) return;
      const from = historyAt ?? history.length;
      const at = Math.min(history.length, Math.max(0, from + step));
      if (at === from) return;
      const kept = historyAt === null ? text : stash;
      set({ historyAt: at === history.length ? null : at, stash: kept, text: at === history.length ? kept : history[at] });
    },

    loadSchema: async (trained) => {
      const key = trained ? "trained" : "plain";
      if (get().schemas[key]) return;
      try {
        const schema = await sqlApi.schema(trained);
        set((s) => ({ schemas: { ...s.schemas, [key]: schema }, schemaError: null }));
      } catch (error) {
        set({ schemaError: `completion is off: ${(error as Error).message}` });
      }
    },

    clearTouched: () => set({ touched: new Set() }),
  }));

  /** The server's document in place of the editor's, as one undo step; the touched nodes
   * highlighted; the editor on the version it was saved as. */
  function applyDocument(result: SqlResult): boolean {
    const editor = useEditor.getState();
    // What the script did not change keeps its objects: the canvas redraws only the rest.
    const next = shareUnchanged(editor.doc, result.document!);
    if (!editor.replaceDocument(next)) return false;
    const after = useEditor.getState();
    if (result.version && after.graph) {
      after.markSaved({ ...after.graph, head: result.version.number, weights: result.version.initial_weights }, next);
      // The notice line still says what the last save did: say what this one did.
      after.notify({ kind: "info", text: `Saved version ${result.version.number} (the SQL script).` });
    }
    const change = result.change;
    const touched = touchedPaths(change ? [...change.nodes.added, ...change.nodes.changed] : []);
    useSql.setState({ touched });
    clearTimeout(highlightTimer);
    highlightTimer = setTimeout(() => {
      if (useSql.getState().touched === touched) useSql.getState().clearTouched();
    }, HIGHLIGHT_MS);
    return true;
  }
}

export const useSql = createSqlStore();

/** Whether the node `id`, drawn at the editor's current scope, was touched by the last change. */
export function useSqlTouched(id: string): boolean {
  const scope = useEditor((s) => s.scope);
  const path = scope.length ? `${scope.join("/")}/${id}` : id;
  return useSql((s) => s.touched.has(path));
}

/** The top-level node a result row names, by its `path`, `node` (a module path such as
 * `blocks.0.attn`) or `id` column (with `parent`, for a nested node); null when it names
 * none the document has. */
export function rowNode(columns: readonly string[], row: readonly unknown[], doc: GraphDocument): string | null {
  const value = (name: string): string | null => {
    const i = columns.indexOf(name);
    return i >= 0 && typeof row[i] === "string" && row[i] !== "" ? (row[i] as string) : null;
  };
  const path = value("path");
  const node = value("node");
  const parent = value("parent");
  const id = value("id");
  const top = path ? path.split("/")[0]
    : node ? node.split(/[./]/)[0]
      : parent ? parent.split("/")[0]
        : id;
  return top !== null && doc.nodes.some((n) => n.id === top) ? top : null;
}

/** Select a top-level node on the canvas (leaving any Repeat the editor is in). */
export function selectTopLevel(id: string): void {
  const editor = useEditor.getState();
  if (editor.scope.length) editor.leaveTo(0);
  useEditor.getState().select([id]);
}

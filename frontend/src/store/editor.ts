// The editor's one store: the document being edited (with its undo history), where in it
// the user is (scope, selection), what the server said about it (inspection), and what is
// saved. Every edit goes through `edit`, so undo, drafts and inspection see all of them.
import { create } from "zustand";
import { subscribeWithSelector } from "zustand/middleware";

import type { Block, BlockCatalog, CustomBlock, GraphDocument, InspectReport, MyBlock, Version } from "../api/types";
import { customLabel, insertCustom, insideCustom, replaceCustom } from "../graph/custom";
import {
  type Catalog, type Point, type Scope, EditError, EMPTY_CATALOG, addNode, blankDocument, canonical,
  connect, copyFragment, type Endpoint, graphAt, makeCatalog, makeRepeat, moveNodes, pasteFragment,
  removeEdges, removeNodes, renameNode, setParam,
} from "../graph/ops";
import * as H from "./history";

export interface SavedGraph {
  id: number;
  name: string;
  /** The version the document was loaded from or last saved as. */
  head: number;
  /** Whether that version has stored weights (an imported or derived model's): its SQL
   * has the tables tensors, heads and eval too. */
  weights?: boolean;
}

export interface Notice {
  kind: "info" | "error" | "warning";
  text: string;
}

export interface EditorState {
  ready: boolean;
  catalog: Catalog;
  blocks: Block[];
  readOnly: boolean;
  /** The share token of a read-only shared view. */
  shareToken: string | null;
  owner: string | null;

  doc: GraphDocument;
  history: H.History<GraphDocument>;
  scope: Scope;
  selection: string[];
  selectedEdges: string[];
  /** A palette block whose explanation the inspector shows. */
  focusBlock: string | null;

  report: InspectReport | null;
  inspecting: boolean;
  inspectError: string | null;

  graph: SavedGraph | null;
  /** The canonical JSON of the last saved document; null when never saved. */
  savedJson: string | null;
  saving: boolean;
  /** The version someone else saved, when a save was refused as stale. */
  conflict: Version | null;
  notice: Notice | null;
  /** Which dialog is open. */
  dialog: null | "save" | "versions" | "share" | "code" | "shortcuts" | "conflict" | "rename" | "import" | "update-block" | "signup";
  /** The block from My blocks the "update-block" dialog offers to update, and to which version. */
  pendingUpdate: { id: string; source: string; version: number } | null;
  drawerOpen: boolean;
  drawerTab: string;
  /** The built-in dataset the model's starter learns, when it came from one. */
  suggestedDataset: string | null;
  /** The user's graphs usable as blocks (GET /api/blocks/mine); empty until loaded. */
  myBlocks: MyBlock[];
}

export interface EditorActions {
  setCatalog(served: BlockCatalog): void;
  load(doc: GraphDocument, opts: { graph?: SavedGraph | null; savedDoc?: GraphDocument | null; readOnly?: boolean; shareToken?: string | null; owner?: string | null; report?: InspectReport | null }): void;
  /** Apply an edit to the document as one undo step (or part of the current gesture). */
  edit(change: (doc: GraphDocument) => GraphDocument): boolean;
  /** Replace the whole document (a SQL script's result) as one undo step; the scope falls
   * back to the deepest Repeat still there. */
  replaceDocument(next: GraphDocument): boolean;
  beginGesture(): void;
  endGesture(): void;
  undo(): void;
  redo(): void;

  addBlock(type: string, at: Point): string | null;
  /** Insert a block from My blocks (the node GET /api/blocks/custom gives). */
  addCustom(found: CustomBlock, at: Point): string | null;
  /** Replace a Custom node by another version of its block (an accepted update). */
  updateCustom(id: string, found: CustomBlock): boolean;
  setMyBlocks(blocks: MyBlock[]): void;
  askUpdate(id: string, source: string, version: number): void;
  connect(from: Endpoint, to: Endpoint): boolean;
  deleteSelection(): void;
  setParam(id: string, name: string, value: unknown): void;
  rename(from: string, to: string): string | null;
  move(moves: Map<string, Point>): void;
  copySelection(): GraphDocument | null;
  paste(fragment: GraphDocument, offset?: Point): void;
  duplicateSelection(): void;
  repeatSelection(): void;

  select(ids: string[], edges?: string[]): void;
  enter(id: string): void;
  leaveTo(depth: number): void;
  focus(type: string | null): void;
  setReport(report: InspectReport | null, error?: string | null): void;
  setInspecting(busy: boolean): void;
  markSaved(graph: SavedGraph, doc: GraphDocument): void;
  setSaving(busy: boolean): void;
  setConflict(version: Version | null): void;
  notify(notice: Notice | null): void;
  openDialog(dialog: EditorState["dialog"]): void;
  openDrawer(open: boolean, tab?: string): void;
  setName(name: string): void;
}

export type EditorStore = EditorState & EditorActions;

function initial(): EditorState {
  return {
    ready: false, catalog: EMPTY_CATALOG, blocks: [], readOnly: false, shareToken: null, owner: null,
    doc: blankDocument(), history: H.emptyHistory(), scope: [], selection: [], selectedEdges: [],
    focusBlock: null, report: null, inspecting: false, inspectError: null, graph: null,
    savedJson: null, saving: false, conflict: null, notice: null, dialog: null,
    drawerOpen: false, drawerTab: "run", suggestedDataset: null, myBlocks: [], pendingUpdate: null,
  };
}

export function createEditorStore() {
  return create<EditorStore>()(subscribeWithSelector((set, get) => {
    /** Run an edit; an EditError becomes a notice instead of a thrown error. */
    const attempt = <T>(fn: () => T): T | null => {
      try {
        return fn();
      } catch (error) {
        if (error instanceof EditError) {
          set({ notice: { kind: "error", text: error.message } });
          return null;
        }
        throw error;
      }
    };

    return {
      ...initial(),

      setCatalog: (served) => set({ blocks: served.blocks, catalog: makeCatalog(served) }),

      load: (doc, opts) =>
        set({
          doc, history: H.emptyHistory(), scope: [], selection: [], selectedEdges: [],
          graph: opts.graph ?? null,
          savedJson: opts.savedDoc ? canonical(opts.savedDoc) : null,
          readOnly: opts.readOnly ?? false, shareToken: opts.shareToken ?? null,
          owner: opts.owner ?? null, report: opts.report ?? null, conflict: null, ready: true,
        }),

      edit: (change) => {
        const { doc, history, readOnly } = get();
        if (readOnly) {
          set({ notice: { kind: "info", text: "This is a read-only view: fork it to edit." } });
          return false;
        }
        const copy = insideCustom(doc, get().scope);
        if (copy) {
          set({ notice: { kind: "info", text: `This is a copy of ${customLabel(copy)}, pinned to that version: change the original, save it, then update the block.` } });
          return false;
        }
        const next = attempt(() => change(doc));
        if (next === null || next === doc) return false;
        set({ doc: next, history: H.record(history, doc) });
        return true;
      },
      replaceDocument: (next) => {
        const s = get();
        if (s.readOnly || next === s.doc) return false;
        // A gesture under way (typing into a field) ends first: the script is a step of its own.
        const history = H.record(H.endGesture(s.history, s.doc), s.doc);
        set({ doc: next, history, ...validScope(next, s.scope, s.selection) });
        return true;
      },
      beginGesture: () => set((s) => ({ history: H.beginGesture(s.history, s.doc) })),
      endGesture: () => set((s) => ({ history: H.endGesture(s.history, s.doc) })),
      undo: () => {
        const s = get();
        const step = H.undo(s.history, s.doc);
        if (step) set({ doc: step.value, history: step.history, ...validScope(step.value, s.scope, s.selection) });
      },
      redo: () => {
        const s = get();
        const step = H.redo(s.history, s.doc);
        if (step) set({ doc: step.value, history: step.history, ...validScope(step.value, s.scope, s.selection) });
      },

      addBlock: (type, at) => {
        let id: string | null = null;
        const { scope, catalog } = get();
        const ok = get().edit((doc) => {
          const result = addNode(doc, scope, type, at, catalog);
          id = result.id;
          return result.doc;
        });
        if (ok && id) set({ selection: [id], selectedEdges: [], focusBlock: null });
        return ok ? id : null;
      },
      addCustom: (found, at) => {
        let id: string | null = null;
        const { scope, catalog } = get();
        const ok = get().edit((doc) => {
          const result = insertCustom(doc, scope, found.node, at, catalog);
          id = result.id;
          return result.doc;
        });
        if (ok && id) set({ selection: [id], selectedEdges: [], focusBlock: null });
        return ok ? id : null;
      },
      updateCustom: (id, found) => {
        const { scope } = get();
        return get().edit((doc) => replaceCustom(doc, scope, id, found.node));
      },
      setMyBlocks: (blocks) => set({ myBlocks: blocks }),
      askUpdate: (id, source, version) => set({ pendingUpdate: { id, source, version }, dialog: "update-block" }),
      connect: (from, to) => {
        const { scope, catalog } = get();
        return get().edit((doc) => connect(doc, scope, from, to, catalog));
      },
      deleteSelection: () => {
        const { scope, catalog, selection, selectedEdges } = get();
        if (selection.length === 0 && selectedEdges.length === 0) return;
        get().edit((doc) => removeNodes(removeEdges(doc, scope, selectedEdges), scope, selection, catalog));
        set({ selection: [], selectedEdges: [] });
      },
      setParam: (id, name, value) => {
        const { scope, catalog } = get();
        get().edit((doc) => setParam(doc, scope, id, name, value, catalog));
      },
      rename: (from, to) => {
        const { scope, catalog, doc } = get();
        try {
          const next = renameNode(doc, scope, from, to, catalog);
          get().edit(() => next);
          set((s) => ({ selection: s.selection.map((id) => (id === from ? to : id)) }));
          return null;
        } catch (error) {
          if (error instanceof EditError) return error.message;
          throw error;
        }
      },
      move: (moves) => {
        const { scope } = get();
        get().edit((doc) => moveNodes(doc, scope, moves));
      },
      copySelection: () => {
        const { doc, scope, selection, catalog } = get();
        if (selection.length === 0) return null;
        return copyFragment(doc, scope, selection, catalog);
      },
      paste: (fragment, offset = [40, 40]) => {
        const { scope, catalog } = get();
        let ids: string[] = [];
        const ok = get().edit((doc) => {
          const result = pasteFragment(doc, scope, fragment, offset, catalog);
          ids = result.ids;
          return result.doc;
        });
        if (ok) set({ selection: ids, selectedEdges: [] });
      },
      duplicateSelection: () => {
        const fragment = get().copySelection();
        if (fragment) get().paste(fragment, [40, 60]);
      },
      repeatSelection: () => {
        const { scope, catalog, selection } = get();
        let id: string | null = null;
        const ok = get().edit((doc) => {
          const result = makeRepeat(doc, scope, selection, catalog);
          id = result.id;
          return result.doc;
        });
        if (ok && id) set({ selection: [id], selectedEdges: [] });
      },

      select: (ids, edges = []) => set({ selection: ids, selectedEdges: edges, focusBlock: null }),
      enter: (id) => {
        const { doc, scope } = get();
        const next = [...scope, id];
        try {
          graphAt(doc, next);
        } catch {
          return;
        }
        set({ scope: next, selection: [], selectedEdges: [] });
      },
      leaveTo: (depth) => set((s) => ({
        scope: s.scope.slice(0, depth),
        selection: depth < s.scope.length ? [s.scope[depth]] : s.selection,
        selectedEdges: [],
      })),
      focus: (type) => set({ focusBlock: type }),
      setReport: (report, error = null) => set({ report, inspectError: error }),
      setInspecting: (busy) => set({ inspecting: busy }),
      markSaved: (graph, doc) => set({ graph, savedJson: canonical(doc), conflict: null }),
      setSaving: (busy) => set({ saving: busy }),
      setConflict: (version) => set({ conflict: version, dialog: version ? "conflict" : get().dialog }),
      notify: (notice) => set({ notice }),
      openDialog: (dialog) => set({ dialog }),
      openDrawer: (open, tab) => set((s) => ({ drawerOpen: open, drawerTab: tab ?? s.drawerTab })),
      setName: (name) => {
        get().edit((doc) => ({ ...doc, name }));
      },
    };
  }));
}

/** After undo or redo, a scope whose Repeat is gone falls back to the deepest one left. */
function validScope(doc: GraphDocument, scope: Scope, selection: string[]): Partial<EditorState> {
  for (let depth = scope.length; depth >= 0; depth--) {
    try {
      const next = scope.slice(0, depth);
      const ids = new Set(graphAt(doc, next).nodes.map((n) => n.id));
      const kept = depth === scope.length ? selection.filter((id) => ids.has(id)) : [];
      return { scope: next, selection: kept };
    } catch {
      // try the parent
    }
  }
  return { scope: [], selection: [] };
}

export const useEditor = createEditorStore();

/** The model's title, wherever it is shown: a saved model's name in the list (renaming and
 * forking change that, not the document), else the document's own name. */
export function modelTitle(state: Pick<EditorState, "graph" | "doc">): string {
  return state.graph?.name || state.doc.name || "Untitled model";
}

/** Whether the document differs from the saved one (always true for a never-saved one). */
export function isDirty(state: Pick<EditorState, "doc" | "savedJson">): boolean {
  if (state.savedJson === null) return true;
  let json = canonicalCache.get(state.doc);
  if (json === undefined) {
    json = canonical(state.doc);
    canonicalCache.set(state.doc, json);
  }
  return json !== state.savedJson;
}

const canonicalCache = new WeakMap<GraphDocument, string>();

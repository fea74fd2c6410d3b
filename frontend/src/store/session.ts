// The editor's conversation with the server: opening what the page was asked for, saving
// (with conflicts), restoring, forking, the local draft that survives a reload, and the
// inspection that follows every edit.
import { ApiError, api } from "../api/client";
import type { GraphDocument, InspectReport } from "../api/types";
import { FORMAT, blankDocument, canonical, modelPart } from "../graph/ops";
import { autoLayoutAll } from "../editor/layout";
import { markClaim, takeClaim, withoutClaim } from "./claim";
import { isDirty, useEditor } from "./editor";

export interface Boot {
  graphId: number | null;
  starter: string | null;
  shareToken: string | null;
  user: { username: string } | null;
  loginUrl: string;
  signupUrl: string;
  /** A shared view's inspection report, made by the page that hands it over. */
  report: InspectReport | null;
}

export function readBoot(): Boot {
  const element = document.getElementById("shipyard-boot");
  const boot = element ? (JSON.parse(element.textContent || "{}") as Partial<Boot>) : {};
  return {
    graphId: boot.graphId ?? null,
    starter: boot.starter ?? null,
    shareToken: boot.shareToken ?? null,
    user: boot.user ?? null,
    loginUrl: boot.loginUrl ?? "/accounts/login/",
    signupUrl: boot.signupUrl ?? "/accounts/signup/",
    report: boot.report ?? null,
  };
}

// ---------------------------------------------------------------------------------------
// Drafts: the unsaved document, kept in localStorage on every change (debounced).

interface Draft {
  doc: GraphDocument;
  /** The version the draft was edited from; null for a never-saved graph. */
  base: number | null;
  savedAt: number;
}

export function draftKey(boot: Pick<Boot, "graphId" | "starter">): string {
  return boot.graphId !== null ? `shipyard.draft.graph.${boot.graphId}`
    : `shipyard.draft.new.${boot.starter ?? "blank"}`;
}

export function readDraft(key: string): Draft | null {
  try {
    const raw = localStorage.getItem(key);
    if (!raw) return null;
    const draft = JSON.parse(raw) as Draft;
    return draft?.doc?.format === FORMAT && Array.isArray(draft.doc.nodes) ? draft : null;
  } catch {
    return null;
  }
}

export function writeDraft(key: string, draft: Draft): void {
  try {
    localStorage.setItem(key, JSON.stringify(draft));
  } catch {
    useEditor.getState().notify({
      kind: "warning",
      text: "This browser's storage is full: your unsaved changes are not kept across reloads. Save now.",
    });
  }
}

export function dropDraft(key: string): void {
  localStorage.removeItem(key);
}

// ---------------------------------------------------------------------------------------
// Opening

let currentDraftKey = "";

export async function open(boot: Boot): Promise<void> {
  const store = useEditor.getState();
  currentDraftKey = draftKey(boot);
  // Everything the editor starts from, asked for at once.
  const [blocks, starters, detail, shared] = await Promise.all([
    api.blocks(),
    boot.shareToken ? Promise.resolve([]) : api.starters(),
    boot.graphId !== null && !boot.shareToken ? api.graph(boot.graphId) : Promise.resolve(null),
    boot.shareToken ? api.shared(boot.shareToken) : Promise.resolve(null),
  ]);
  store.setCatalog(blocks);

  if (shared) {
    store.load(shared.version.document, {
      graph: { id: 0, name: shared.name, head: shared.version.number, weights: shared.version.initial_weights },
      savedDoc: shared.version.document, readOnly: true, shareToken: boot.shareToken,
      owner: shared.owner, report: boot.report,
    });
    return;
  }

  let doc: GraphDocument;
  let savedDoc: GraphDocument | null = null;
  let graph = null;
  if (detail) {
    doc = detail.version.document;
    savedDoc = doc;
    graph = { id: detail.id, name: detail.name, head: detail.head, weights: detail.version.initial_weights };
  } else if (boot.starter) {
    const starter = starters.find((s) => s.name === boot.starter);
    // Starters are written in one row; laid out in layers they read better on screen.
    doc = starter ? autoLayoutAll(starter.document, useEditor.getState().catalog) : blankDocument();
  } else {
    doc = blankDocument();
  }
  // Which built-in dataset fits: the starter's, for a model made from one.
  const origin = starters.find((s) => s.name === boot.starter)
    ?? starters.find((s) => s.document.name === doc.name);
  useEditor.setState({ suggestedDataset: origin?.dataset ?? null });

  const draft = readDraft(currentDraftKey);
  let restored = false;
  if (draft && canonical(draft.doc) !== canonical(doc)) {
    doc = draft.doc;
    restored = true;
  }
  store.load(doc, { graph, savedDoc });
  if (restored) {
    const stale = graph && draft!.base !== null && draft!.base < graph.head;
    store.notify({
      kind: stale ? "warning" : "info",
      text: stale
        ? `Restored your unsaved draft, edited from v${draft!.base}; v${graph!.head} has been saved since. Saving will ask what to do.`
        : "Restored your unsaved changes from this browser.",
    });
    if (stale) useEditor.setState({ graph: { ...graph!, head: draft!.base! } });
  }
}

/** Keep a draft of unsaved changes; drop it once saved. */
export function followDrafts(): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const keep = () => {
    timer = undefined;
    const s = useEditor.getState();
    if (s.readOnly || !s.ready || !currentDraftKey) return;
    if (isDirty(s)) writeDraft(currentDraftKey, { doc: s.doc, base: s.graph?.head ?? null, savedAt: Date.now() });
    else dropDraft(currentDraftKey);
  };
  const unsubscribe = useEditor.subscribe(
    (s) => s.doc,
    () => {
      clearTimeout(timer);
      timer = setTimeout(keep, 300);
    },
  );
  // A reload or a closed tab within the debounce would lose the last edit: keep it now.
  const flush = () => {
    if (timer === undefined) return;
    clearTimeout(timer);
    keep();
  };
  window.addEventListener("pagehide", flush);
  return () => {
    clearTimeout(timer);
    window.removeEventListener("pagehide", flush);
    unsubscribe();
  };
}

// ---------------------------------------------------------------------------------------
// A visitor's drawing, claimed after signing up (claim.ts)

/** Before leaving for the sign-up or log-in page: keep the drawing as this page's draft now
 * (not after the usual delay) and leave the mark that asks for it to be saved on return. */
export function keepForClaim(): void {
  const s = useEditor.getState();
  if (s.readOnly || s.graph !== null || !currentDraftKey) return;
  writeDraft(currentDraftKey, { doc: s.doc, base: null, savedAt: Date.now() });
  markClaim(currentDraftKey);
}

/** Back from signing up or logging in (`claim=1` and this browser's mark): save the opened
 * drawing (the restored draft) as a new model, once. Call after `open`. A failed save keeps
 * the draft in this browser and says so. */
export async function claimIfAsked(boot: Boot): Promise<SaveOutcome | null> {
  const search = window.location.search;
  const asked = boot.user !== null && boot.graphId === null && !boot.shareToken &&
    takeClaim(search, currentDraftKey);
  // The parameter goes at once: a reload of this page does not ask again.
  if (new URLSearchParams(search).has("claim")) {
    history.replaceState(null, "", `${window.location.pathname}${withoutClaim(search)}${window.location.hash}`);
  }
  if (!asked) return null;
  const outcome = await save("Drawn before signing up");
  if (outcome === "saved" || outcome === "unchanged") {
    const graph = useEditor.getState().graph;
    useEditor.getState().notify({
      kind: "info",
      text: `Your drawing is saved as your model "${graph?.name ?? "Untitled model"}".`,
    });
  } else if (outcome !== "conflict") {
    // save() said why; the draft stays under this page's key, restored on the next visit.
    writeDraft(currentDraftKey, { doc: useEditor.getState().doc, base: null, savedAt: Date.now() });
    const why = useEditor.getState().notice?.text ?? "";
    useEditor.getState().notify({
      kind: "error",
      text: `Your drawing was not saved as a model, and is kept in this browser: press Save to try again. ${why}`.trim(),
    });
  }
  return outcome;
}

// ---------------------------------------------------------------------------------------
// Saving

export type SaveOutcome = "saved" | "unchanged" | "conflict" | "invalid" | "failed";

export async function save(message?: string): Promise<SaveOutcome> {
  const store = useEditor.getState();
  if (store.readOnly || store.saving) return "failed";
  const doc = store.doc;
  store.setSaving(true);
  try {
    if (store.graph === null) {
      const created = await api.createGraph({ document: doc, message, name: doc.name?.trim() || undefined });
      store.markSaved({ id: created.id, name: created.name, head: created.head }, doc);
      dropDraft(currentDraftKey);
      currentDraftKey = draftKey({ graphId: created.id, starter: null });
      history.replaceState(null, "", `/g/${created.id}`);
      store.notify({ kind: "info", text: `Saved as version ${created.head}.` });
      return "saved";
    }
    const result = await api.save(store.graph.id, doc, store.graph.head, message);
    store.markSaved({ ...store.graph, head: result.version.number }, doc);
    dropDraft(currentDraftKey);
    store.notify({
      kind: "info",
      text: result.created ? `Saved version ${result.version.number}.` : "Nothing changed since the last version.",
    });
    return result.created ? "saved" : "unchanged";
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.body.current_version) {
      store.setConflict(error.body.current_version);
      return "conflict";
    }
    if (error instanceof ApiError && error.status === 400 && error.body.problems) {
      const first = error.body.problems[0];
      store.notify({
        kind: "error",
        text: `Not saved: the graph has ${error.body.problems.length} problem(s)` +
          (first ? ` (first: ${first.node ? first.node + ": " : ""}${first.message})` : "") +
          ". Your changes are kept in this browser.",
      });
      return "invalid";
    }
    store.notify({ kind: "error", text: `Not saved: ${(error as Error).message}. Your changes are kept in this browser.` });
    return "failed";
  } finally {
    useEditor.getState().setSaving(false);
  }
}

/** After a conflict: throw the local changes away and load the latest version. */
export async function reloadLatest(): Promise<void> {
  const store = useEditor.getState();
  if (!store.graph) return;
  const detail = await api.graph(store.graph.id);
  dropDraft(currentDraftKey);
  store.load(detail.version.document, {
    graph: { id: detail.id, name: detail.name, head: detail.head, weights: detail.version.initial_weights },
    savedDoc: detail.version.document,
  });
  store.openDialog(null);
  store.notify({ kind: "info", text: `Loaded version ${detail.head}.` });
}

/** After a conflict: keep the local changes as a new graph of their own. */
export async function forkLocal(): Promise<void> {
  const store = useEditor.getState();
  const name = `${store.graph?.name ?? store.doc.name ?? "Untitled model"} (copy)`;
  const created = await api.createGraph({ document: store.doc, name, message: `Copy of unsaved changes to ${store.graph?.name}` });
  dropDraft(currentDraftKey);
  window.location.assign(`/g/${created.id}`);
}

/** Restore an old version (a new version with its document) and load it. */
export async function restore(number: number): Promise<void> {
  const store = useEditor.getState();
  if (!store.graph) return;
  const result = await api.restore(store.graph.id, number);
  const version = await api.version(store.graph.id, result.version.number);
  dropDraft(currentDraftKey);
  const graph = { ...store.graph, head: result.version.number };
  store.load(version.document, { graph, savedDoc: version.document });
  store.notify({ kind: "info", text: result.created ? `Restored version ${number} as version ${result.version.number}.` : "That version is already the latest." });
}

export async function rename(name: string): Promise<void> {
  const store = useEditor.getState();
  const clean = name.trim();
  if (!clean) return;
  if (store.graph && !store.readOnly) {
    const out = await api.renameGraph(store.graph.id, clean);
    useEditor.setState({ graph: { ...store.graph, name: out.name } });
  }
  if (store.graph === null) store.setName(clean);
}

export async function forkShared(): Promise<void> {
  const { shareToken } = useEditor.getState();
  if (!shareToken) return;
  const created = await api.fork(shareToken);
  window.location.assign(`/g/${created.id}`);
}

// ---------------------------------------------------------------------------------------
// Inspection: after every change to the model (not its layout), ask the server again.

export function followInspection(delayMs = 60): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let controller: AbortController | null = null;
  let lastKey = "";
  let lastNodes: unknown = null;
  let lastEdges: unknown = null;
  let generation = 0;

  const run = async () => {
    const s = useEditor.getState();
    if (!s.ready) return; // loading: the loaded document comes as a change of its own
    if (s.readOnly && s.report) return; // a shared view comes with its report and never changes
    const key = canonical(modelPart(s.doc));
    if (key === lastKey) return;
    lastKey = key;
    controller?.abort();
    controller = new AbortController();
    const mine = ++generation;
    s.setInspecting(true);
    try {
      const report = await api.inspect(s.doc, controller.signal);
      if (mine === generation) useEditor.getState().setReport(report, null);
    } catch (error) {
      if ((error as Error).name === "AbortError") return;
      if (mine === generation) {
        lastKey = "";
        useEditor.getState().setReport(useEditor.getState().report, `shapes could not be checked: ${(error as Error).message}`);
      }
    } finally {
      if (mine === generation) useEditor.getState().setInspecting(false);
    }
  };

  const unsubscribe = useEditor.subscribe(
    (s) => s.doc,
    (doc) => {
      // A move changes only the layout: the model, and so the report, stay the same.
      if (doc.nodes === lastNodes && doc.edges === lastEdges) return;
      lastNodes = doc.nodes;
      lastEdges = doc.edges;
      clearTimeout(timer);
      timer = setTimeout(run, delayMs);
    },
    { fireImmediately: true },
  );
  return () => {
    clearTimeout(timer);
    controller?.abort();
    unsubscribe();
  };
}

/** A new graph from an ONNX file, then open it. The current model's unsaved changes stay in
 * its draft. Throws the API's refusal (an ApiError listing problems and unmapped operators). */
export async function importOnnx(file: File, name?: string): Promise<void> {
  const created = await api.importOnnx(file, name);
  window.location.assign(`/g/${created.id}`);
}

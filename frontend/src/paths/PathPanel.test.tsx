// The path panel and its store against a stubbed fetch: what the panel sends, shows and
// keeps is the unit here. The paths themselves and their checks (the engine's inspection)
// are the server's, tested under tests/; tests/e2e/test_guided_path.py walks a real path in
// a browser against the real server and worker.
import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { GraphDocument, Job } from "../api/types";
import { button, click, flush, type Rendered, render } from "../dialogs/testing";
import { blankDocument, canonical, modelPart } from "../graph/ops";
import { emptyDerived } from "../runs/series";
import { runsStore } from "../runs/store";
import { useEditor } from "../store/editor";
import { SERVED } from "../test/catalog";
import type { PathDetail, Progress } from "./api";
import { LearnMenu, PathPanel } from "./PathPanel";
import { AUTO_CHECK_MS, followPath, graphPathKey, pathToOpen, progressKey, usePaths } from "./store";

interface Sent {
  method: string;
  path: string;
  body: unknown;
}

const blank: GraphDocument = { format: "shipyard.graph/v1", name: "my gpt", nodes: [], edges: [], layout: {} };

const tokens: GraphDocument = {
  format: "shipyard.graph/v1", name: "gpt",
  nodes: [
    { id: "tokens", type: "Input", params: { shape: [64], dtype: "int64" } },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "tokens", to: "y" }],
};

const embedded: GraphDocument = {
  ...tokens,
  nodes: [tokens.nodes[0], { id: "wte", type: "Embedding", params: { num_embeddings: 128, embedding_dim: 64 } }, tokens.nodes[1]],
  edges: [{ from: "tokens", to: "wte" }, { from: "wte", to: "y" }],
};

const gpt: PathDetail = {
  name: "gpt", title: "Build a GPT from scratch", summary: "From characters to a trained GPT", dataset: "shakespeare",
  steps: [
    { id: "tokens", title: "Characters as token ids", text: "A model reads **numbers**.", task: "Add an `Input` of 64 ids.", check: "canvas", solution: tokens },
    { id: "embedding", title: "An embedding", text: "Each id becomes a vector.", task: "Add an `Embedding`.", check: "canvas", solution: embedded },
    { id: "train", title: "Train", text: "Now it learns.", task: "Press ▶ Run.", check: "run", solution: embedded },
    { id: "attention", title: "Read the attention maps", text: "Where it looks.", task: "Open Attention.", check: "attention", solution: embedded },
  ],
};

const summary = { name: "gpt", title: gpt.title, summary: gpt.summary, steps: 4, dataset: "shakespeare" };

let sent: Sent[] = [];
type Answer = { status: number; body: unknown } | ((body: unknown) => { status: number; body: unknown });
let routes: Record<string, Answer> = {};

function serve(next: Record<string, Answer>) {
  routes = next;
  vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
    const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
    const method = init.method ?? "GET";
    sent.push({ method, path: input, body });
    const route = routes[`${method} ${input}`];
    const answer = typeof route === "function" ? route(body) : route;
    if (!answer) return new Response(JSON.stringify({ error: `no route ${method} ${input}` }), { status: 404 });
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "Content-Type": "application/json" } });
  }));
}

const base = {
  "GET /api/paths": { status: 200, body: [summary] },
  "GET /api/paths/gpt": { status: 200, body: gpt },
  "PUT /api/paths/gpt/progress": (body: unknown) => ({ status: 200, body }),
};

const puts = () => sent.filter((s) => s.method === "PUT").map((s) => s.body as Progress);
const checks = () => sent.filter((s) => s.path.endsWith("/check"));

const initialEditor = useEditor.getState();
const initialPaths = usePaths.getState();
let view: Rendered | null = null;
let stop: (() => void) | null = null;

beforeEach(() => {
  sent = [];
  localStorage.clear();
  useEditor.setState(initialEditor, true);
  useEditor.getState().setCatalog(SERVED);
  useEditor.getState().load(blank, { graph: null });
  usePaths.setState(initialPaths, true);
  runsStore.setState({ job: null, derived: emptyDerived(), tab: "run" });
});

afterEach(() => {
  view?.unmount();
  view = null;
  stop?.();
  stop = null;
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

async function openPanel(loggedIn: boolean): Promise<HTMLElement> {
  usePaths.getState().setLoggedIn(loggedIn);
  await usePaths.getState().open("gpt");
  view = await render(<PathPanel />);
  await flush();
  return view.container;
}

const text = (root: ParentNode, id: string) => root.querySelector(`[data-testid="${id}"]`)?.textContent ?? null;
const testid = (root: ParentNode, id: string) => root.querySelector<HTMLButtonElement>(`[data-testid="${id}"]`);

describe("the path panel", () => {
  it("shows step N of M with its text and task, and walks back and forth, keeping the step", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } } });
    const root = await openPanel(true);
    expect(text(root, "path-step-count")).toBe("Step 1 of 4");
    expect(text(root, "path-step-title")).toBe("Characters as token ids");
    expect(root.querySelector(".path-body .markdown strong")?.textContent).toBe("numbers");
    expect(root.querySelector(".path-task code")?.textContent).toBe("Input");
    expect(testid(root, "path-back")!.disabled).toBe(true);
    // The path's dataset is the one the run form offers.
    expect(useEditor.getState().suggestedDataset).toBe("shakespeare");

    await click(testid(root, "path-next"));
    expect(text(root, "path-step-count")).toBe("Step 2 of 4");
    expect(text(root, "path-step-title")).toBe("An embedding");
    await click(testid(root, "path-back"));
    expect(text(root, "path-step-count")).toBe("Step 1 of 4");
    await click(button(root, "Step 4: Read the attention maps"));
    expect(text(root, "path-step-count")).toBe("Step 4 of 4");
    expect(testid(root, "path-next")!.disabled).toBe(true);
    await flush();
    expect(puts().map((p) => p.current)).toEqual(["embedding", "tokens", "attention"]);
  });

  it("a failed check says what is wrong and selects the block it names; a passed one marks the step done", async () => {
    useEditor.getState().load(embedded, { graph: null });
    let passed = false;
    serve({
      ...base,
      "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: "embedding" } },
      "POST /api/paths/gpt/steps/embedding/check": () => ({
        status: 200,
        body: passed ? { passed: true, message: "Well done.", node: null }
          : { passed: false, message: "wte should give vectors of 64 numbers, not 32.", node: "wte" },
      }),
    });
    const root = await openPanel(true);
    expect(text(root, "path-step-count")).toBe("Step 2 of 4");
    await click(testid(root, "path-check"));
    await flush();
    expect(checks()).toHaveLength(1);
    expect(checks()[0].body).toEqual(embedded); // the canvas as it is
    expect(text(root, "path-result")).toContain("wte should give vectors of 64 numbers, not 32.");
    expect(useEditor.getState().selection).toEqual(["wte"]);
    expect(root.querySelector('[data-testid="path-step-done"]')).toBeNull();

    passed = true;
    await click(testid(root, "path-check"));
    await flush();
    expect(text(root, "path-result")).toBe("✓ done");
    expect(root.querySelector('[data-testid="path-step-done"]')).not.toBeNull();
    expect(testid(root, "path-next")!.className).toBe("primary");
    expect(puts().at(-1)).toEqual({ done: ["embedding"], current: "embedding" });
  });

  it("Show me puts the step's solution on the canvas as one change that Undo takes back", async () => {
    useEditor.getState().load(tokens, { graph: null });
    useEditor.getState().addBlock("Linear", [0, 0]); // the user's own work, to be given back
    const mine = useEditor.getState().doc;
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: ["tokens"], current: "embedding" } } });
    const root = await openPanel(true);
    const pastBefore = useEditor.getState().history.past.length;
    await click(testid(root, "path-show-me"));
    const after = useEditor.getState();
    expect(canonical(modelPart(after.doc))).toBe(canonical(modelPart({ ...embedded, name: "gpt" })));
    expect(after.doc.name).toBe("gpt"); // the user's name for the model stays
    expect(Object.keys(after.doc.layout ?? {}).sort()).toEqual(["tokens", "wte", "y"]); // laid out
    expect(after.history.past.length).toBe(pastBefore + 1);
    expect(after.notice?.text).toMatch(/Undo .* brings your own back/); // says how to get it back
    after.undo();
    expect(useEditor.getState().doc).toBe(mine);
  });

  it("Show me on an untitled canvas names the model as the solution does", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } } });
    useEditor.getState().load(blankDocument(), { graph: null });
    const root = await openPanel(true);
    await click(testid(root, "path-show-me"));
    expect(useEditor.getState().doc.name).toBe("gpt");
  });

  it("checks by itself once the canvas rests, and says done without a click", async () => {
    vi.useFakeTimers();
    serve({
      ...base,
      "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } },
      "POST /api/paths/gpt/steps/tokens/check": (body) => ({
        status: 200,
        body: (body as GraphDocument).nodes.length >= 2 ? { passed: true, message: "", node: null }
          : { passed: false, message: "There is no Output yet.", node: null },
      }),
    });
    stop = followPath(usePaths, AUTO_CHECK_MS);
    usePaths.getState().setLoggedIn(true);
    await usePaths.getState().open("gpt");
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS + 10);
    expect(checks()).toHaveLength(1); // the step opened: checked once
    // A failure found by itself stays quiet: the user is still building.
    expect(usePaths.getState().result?.shown).toBe(false);

    useEditor.getState().addBlock("Input", [0, 0]);
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS);
    expect(checks()).toHaveLength(2);
    // Moving a block changes nothing the check looks at.
    useEditor.getState().move(new Map([[useEditor.getState().doc.nodes[0].id, [50, 50]]]));
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS * 2);
    expect(checks()).toHaveLength(2);

    useEditor.getState().addBlock("Output", [0, 100]);
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS / 2);
    useEditor.getState().setParam(useEditor.getState().doc.nodes[0].id, "shape", [32]);
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS / 2);
    expect(checks()).toHaveLength(2); // still changing: not yet
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS);
    expect(checks()).toHaveLength(3);
    expect(usePaths.getState().done).toEqual(["tokens"]);
  });

  it("once the user asked for a step's check, its automatic checks say what they find", async () => {
    vi.useFakeTimers();
    serve({
      ...base,
      "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } },
      "POST /api/paths/gpt/steps/tokens/check": (body) => ({
        status: 200,
        body: (body as GraphDocument).nodes.length >= 2 ? { passed: true, message: "", node: null }
          : (body as GraphDocument).nodes.length === 1 ? { passed: false, message: "There is no Output yet.", node: null }
            : { passed: false, message: "There is no Input yet.", node: null },
      }),
    });
    stop = followPath(usePaths, AUTO_CHECK_MS);
    usePaths.getState().setLoggedIn(true);
    await usePaths.getState().open("gpt");
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS + 10);
    expect(usePaths.getState().result?.shown).toBe(false);

    // Check pressed just after an edit: the automatic check of that edit comes after it
    // and must not hide the answer.
    useEditor.getState().addBlock("Input", [0, 0]);
    await usePaths.getState().check();
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS + 10);
    expect(usePaths.getState().result).toMatchObject({ shown: true, result: { message: "There is no Output yet." } });
    // Another step: quiet again until asked.
    usePaths.getState().go(1);
    useEditor.getState().addBlock("Output", [0, 100]);
    await vi.advanceTimersByTimeAsync(AUTO_CHECK_MS + 10);
    expect(usePaths.getState().asked).toBeNull();
  });

  it("a run step is done when a finished run of this model shows a falling loss, then attention when its tab opens", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: ["tokens", "embedding"], current: "train" } } });
    useEditor.getState().load(embedded, { graph: { id: 7, name: "gpt", head: 1 }, savedDoc: embedded });
    stop = followPath(usePaths, AUTO_CHECK_MS);
    const root = await openPanel(true);
    expect(text(root, "path-result")).toMatch(/^Press ▶ Run/);
    await click(testid(root, "path-open-drawer"));
    expect(useEditor.getState().drawerOpen).toBe(true);
    expect(runsStore.getState().tab).toBe("run");

    const run = { id: 3, graph: 7, kind: "train", status: "running", step: 10, total_steps: 100 } as Job;
    await act(async () => runsStore.setState({ job: run }));
    expect(text(root, "path-result")).toBe("Training: step 10 of 100. The loss chart fills as it learns.");
    expect(usePaths.getState().done).not.toContain("train");

    await act(async () => runsStore.setState({
      job: { ...run, status: "succeeded", step: 100 },
      derived: { ...emptyDerived(), series: { train_loss: { steps: [0, 100], values: [4.2, 2.4] } }, attention: { "blocks.0.attn": [] } },
    }));
    expect(usePaths.getState().done).toContain("train");
    expect(text(root, "path-result")).toBe("✓ done");

    await click(testid(root, "path-next"));
    expect(usePaths.getState().done).not.toContain("attention"); // the drawer is on the run tab
    await click(testid(root, "path-open-drawer"));
    expect(runsStore.getState().tab).toBe("attention");
    expect(usePaths.getState().done).toContain("attention");
    expect(text(root, "path-complete")).toMatch(/Path complete/);
  });

  it("on the run step, says when the canvas is not ready to train, and Show me puts the model there", async () => {
    useEditor.getState().load(tokens, { graph: null });
    serve({
      ...base,
      "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: "train" } },
      "POST /api/paths/gpt/steps/train/check": (body) => ({
        status: 200,
        body: (body as GraphDocument).nodes.some((n) => n.type === "Embedding")
          ? { passed: true, message: "Ready: train it on shakespeare from the run drawer.", node: null }
          : { passed: false, message: "Nothing turns the character ids into vectors yet.", node: null },
      }),
    });
    const root = await openPanel(true);
    await act(async () => void (await usePaths.getState().check({ auto: true })));
    expect(text(root, "path-not-ready")).toContain("Before training: Nothing turns the character ids into vectors yet.");
    await click(testid(root, "path-show-me"));
    await act(async () => void (await usePaths.getState().check({ auto: true })));
    expect(testid(root, "path-not-ready")).toBeNull();
    expect(usePaths.getState().done).toEqual([]); // ready is not trained
  });

  it("tells an anonymous visitor that runs need an account, without a button that cannot work", async () => {
    serve(base);
    usePaths.setState({ index: 0 });
    const root = await openPanel(false);
    await click(button(root, "Step 3: Train"));
    expect(text(root, "path-result")).toMatch(/sign up or log in/);
    expect(testid(root, "path-open-drawer")).toBeNull();
  });
});

describe("progress", () => {
  it("an anonymous visitor's progress is kept in this browser and resumes after a reload", async () => {
    serve({ ...base, "POST /api/paths/gpt/steps/tokens/check": { status: 200, body: { passed: true, message: "", node: null } } });
    await openPanel(false);
    await act(async () => {
      await usePaths.getState().check();
      usePaths.getState().go(1);
    });
    expect(sent.some((s) => s.path.endsWith("/progress"))).toBe(false); // never asks the account
    expect(JSON.parse(localStorage.getItem(progressKey("gpt"))!)).toEqual({ done: ["tokens"], current: "embedding" });
    expect(text(view!.container, "path-panel")).toContain("kept in this browser");

    // A reload: a fresh store state, the same browser.
    await act(async () => {
      usePaths.setState(initialPaths, true);
      usePaths.getState().setLoggedIn(false);
      await usePaths.getState().open("gpt");
    });
    expect(usePaths.getState().index).toBe(1);
    expect(usePaths.getState().done).toEqual(["tokens"]);
  });

  it("a user's progress comes from the account, and a new account takes over what was done in this browser", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: ["tokens", "embedding", "gone"], current: "train" } } });
    localStorage.setItem(progressKey("gpt"), JSON.stringify({ done: ["tokens"], current: "embedding" }));
    usePaths.getState().setLoggedIn(true);
    await usePaths.getState().open("gpt");
    expect(usePaths.getState().index).toBe(2); // the account wins; unknown ids are dropped
    expect(usePaths.getState().done).toEqual(["tokens", "embedding"]);
    expect(usePaths.getState().storage).toBe("account");
    expect(puts()).toEqual([]);

    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } } });
    usePaths.setState(initialPaths, true);
    usePaths.getState().setLoggedIn(true);
    await usePaths.getState().open("gpt");
    expect(usePaths.getState().index).toBe(1);
    await flush();
    expect(puts()).toEqual([{ done: ["tokens"], current: "embedding" }]);
  });

  it("a refused progress call (401/403) keeps progress in the browser instead", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 403, body: { error: "Log in to keep progress." } } });
    const root = await openPanel(true);
    expect(usePaths.getState().storage).toBe("browser");
    await click(testid(root, "path-next"));
    expect(puts()).toEqual([]);
    expect(JSON.parse(localStorage.getItem(progressKey("gpt"))!).current).toBe("embedding");
  });

  it("a saved model remembers its path: reopening it opens the path again, closing forgets", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } } });
    stop = followPath(usePaths, AUTO_CHECK_MS);
    await openPanel(true);
    expect(pathToOpen("?path=digits", null)).toBe("digits");
    expect(pathToOpen("", null)).toBeNull();
    await act(async () => useEditor.getState().markSaved({ id: 12, name: "gpt", head: 1 }, blank)); // the first save
    expect(localStorage.getItem(graphPathKey(12))).toBe("gpt");
    expect(pathToOpen("", 12)).toBe("gpt");
    await click(testid(view!.container, "path-next")); // (a step on)
    await click(button(view!.container, "Close the path"));
    expect(view!.container.querySelector('[data-testid="path-panel"]')).toBeNull();
    expect(pathToOpen("", 12)).toBeNull();
  });
});

describe("the Learn menu", () => {
  it("lists the paths and opens the one chosen in the panel", async () => {
    serve({ ...base, "GET /api/paths/gpt/progress": { status: 200, body: { done: [], current: null } } });
    usePaths.getState().setLoggedIn(true);
    view = await render(<><LearnMenu /><PathPanel /></>);
    await click(testid(view.container, "learn-button"));
    await flush();
    const item = view.container.querySelector<HTMLButtonElement>('.learn-item[data-path="gpt"]')!;
    expect(item.textContent).toContain("Build a GPT from scratch");
    expect(item.textContent).toContain("4 steps");
    await click(item);
    await flush();
    expect(text(view.container, "path-step-count")).toBe("Step 1 of 4");
    expect(view.container.querySelector('[data-testid="learn-list"]')).toBeNull();
  });
});

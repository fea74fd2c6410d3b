import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { GraphDocument, Job } from "../api/types";
import { Inspector } from "../editor/Inspector";
import { useEditor } from "../store/editor";
import { CATALOG, SERVED } from "../test/catalog";
import { forgetEdgeValues } from "./EdgeFlow";
import { charLabel, edgeSource, figure, histogramBars, percent, weightsKey } from "./explain";
import { NextChar } from "./NextChar";
import { runsStore } from "./store";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const job = (over: Partial<Job> = {}) => ({
  id: 5, graph: 7, graph_name: "mlp", version: 1, kind: "train", dataset: "digits", upload: null,
  dataset_options: {}, config: { steps: 100, checkpoint_interval: 50 }, queue: "cpu", time_limit: 600,
  status: "succeeded", step: 100, total_steps: 100, position: null, attempts: 1, device: "cpu", worker: "w",
  error: "", cancel_requested: false, published: false, last_seq: 3, metrics: {}, downloads: ["weights"],
  download_errors: {}, created_at: "2025-01-01T00:00:00Z", started_at: null, finished_at: null, heartbeat_at: null,
  weights_of: null, result: null, ...over,
}) as unknown as Job;

const mlp: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "tiny",
  nodes: [
    { id: "x", type: "Input", params: { shape: [4] } },
    { id: "hidden", type: "Linear", params: { out_features: 3 } },
    { id: "act", type: "ReLU" },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "hidden" }, { from: "hidden", to: "act" }, { from: "act", to: "y" }],
};

const dead = {
  shape: [1, 3], dtype: "float32", histogram: { edges: [0, 0], counts: [3] }, mean: 0, std: 0, zeros: 1, nonfinite: 0, counted: 3,
};
const live = {
  shape: [1, 3], dtype: "float32", histogram: { edges: [-1, 0, 1, 2], counts: [1, 0, 2] }, mean: 0.5, std: 1.25, zeros: 0, nonfinite: 0, counted: 3,
};

let root: Root;
let container: HTMLElement;
let requests: { method: string; path: string; body: unknown }[];

function mockFetch(route: (method: string, url: URL, body: unknown) => { status: number; body: unknown }) {
  vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
    const url = new URL(input, "http://localhost");
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    requests.push({ method, path: url.pathname + url.search, body });
    const answer = route(method, url, body);
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "Content-Type": "application/json" } });
  }));
}

async function settle(ms = 20, times = 5) {
  for (let i = 0; i < times; i++) {
    await act(async () => {
      await new Promise((r) => setTimeout(r, ms));
    });
  }
}

const $ = <T extends Element = HTMLElement>(selector: string) => container.querySelector<T>(selector);
const $$ = (selector: string) => [...container.querySelectorAll<HTMLElement>(selector)];

function typeInto(area: HTMLTextAreaElement, value: string) {
  const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value")!.set!;
  setter.call(area, value);
  area.dispatchEvent(new Event("input", { bubbles: true }));
}

const initialEditor = useEditor.getState();

beforeEach(() => {
  requests = [];
  forgetEdgeValues();
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  useEditor.setState(initialEditor, true);
  useEditor.getState().setCatalog(SERVED);
  runsStore.setState({ job: null, share: null });
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
  runsStore.setState({ job: null });
  vi.unstubAllGlobals();
});

describe("explain helpers", () => {
  it("names the value an edge carries by its source port", () => {
    const split: GraphDocument = {
      format: "shipyard.graph/v1",
      nodes: [
        { id: "x", type: "Input", params: { shape: [4, 6] } },
        { id: "qkv", type: "Split", params: { names: ["q", "k"] } },
        { id: "sum", type: "Add" },
        { id: "y", type: "Output" },
      ],
      edges: [{ from: "x", to: "qkv" }, { from: "qkv.q", to: "sum.a" }, { from: "qkv.k", to: "sum.b" }, { from: "sum", to: "y" }],
    };
    expect(edgeSource("x->qkv", split, CATALOG)).toBe("x.out");
    expect(edgeSource("qkv.k->sum.b", split, CATALOG)).toBe("qkv.k");
    expect(edgeSource("nonsense", split, CATALOG)).toBeNull();
  });

  it("scales a histogram's bars to the fullest bin, a lone value still visible", () => {
    const bars = histogramBars({ edges: [0, 1, 2, 3], counts: [100, 0, 1] }, 30, 50);
    expect(bars.map((b) => b.height)).toEqual([50, 0, 1]);
    expect(bars.map((b) => b.x)).toEqual([0, 10, 20]);
    expect(bars[2]).toMatchObject({ from: 2, to: 3, count: 1 });
    expect(histogramBars({ edges: [], counts: [] }, 30, 50)).toEqual([]);
  });

  it("writes figures and shares briefly", () => {
    expect(figure(0.123456)).toBe("0.1235");
    expect(figure(null)).toBe("—");
    expect(figure(1234567)).toBe("1.23e+6");
    expect(percent(1)).toBe("100%");
    expect(percent(0.4844)).toBe("48.4%");
    expect(percent(0.00001)).toBe("<0.1%");
    expect(charLabel(" ")).toBe("␣");
    expect(charLabel("\n")).toBe("↵");
    expect(charLabel("\x14")).toBe("\\x14");
  });

  it("reads a run's edges again at each checkpoint while it trains, and once it ended", () => {
    expect(weightsKey(null)).toBeNull();
    expect(weightsKey(job({ status: "queued", step: 0 }))).toBeNull();
    expect(weightsKey(job({ status: "running", step: 49 }))).toBe(weightsKey(job({ status: "running", step: 10 })));
    expect(weightsKey(job({ status: "running", step: 51 }))).not.toBe(weightsKey(job({ status: "running", step: 49 })));
    expect(weightsKey(job())).toBe("5:succeeded");
    expect(weightsKey(job({ kind: "benchmark" }))).toBeNull();
  });
});

describe("what flows on an edge", () => {
  async function select(edge: string) {
    useEditor.getState().load(mlp, {});
    useEditor.getState().select([], [edge]);
    await act(async () => root.render(<Inspector />));
    await settle();
  }

  it("shows a dead ReLU's output as all zeros for the open run's example", async () => {
    mockFetch((_method, url) => {
      expect(url.pathname).toBe("/api/jobs/5/edges");
      return { status: 200, body: { example: { tokens: null, weights: "final", step: 100 },
        edges: { "x.out": live, "hidden.out": live, "act.out": dead } } };
    });
    runsStore.setState({ job: job() });
    await select("act->y");
    expect($('[data-testid="edge-flow"]')!.textContent).toContain("run #5, validation example");
    expect($('[data-testid="edge-zeros"]')!.textContent).toContain("100%");
    expect($('[data-testid="edge-zeros"]')!.textContent).toContain("dead ReLU");
    expect($('[data-testid="edge-stats"]')!.textContent).toContain("[1, 3]");
    expect($$('[data-testid="edge-histogram"] rect')).toHaveLength(1);
    // another edge of the same run: no second request
    await act(async () => useEditor.getState().select([], ["hidden->act"]));
    await settle();
    expect($('[data-testid="edge-zeros"]')!.textContent).toBe("0%");
    expect($('[data-testid="edge-stats"]')!.textContent).toContain("0.5");
    expect($$('[data-testid="edge-histogram"] rect')).toHaveLength(3);
    expect(requests).toHaveLength(1);
  });

  it("says why a run without weights yet has nothing to show", async () => {
    mockFetch(() => ({ status: 409, body: { error: "run 5 has no weights yet (it is running)" } }));
    runsStore.setState({ job: job({ status: "running", step: 3 }) });
    await select("x->hidden");
    expect($('[data-testid="edge-flow"]')!.textContent).toContain("no weights yet");
  });

  it("says a queued run has no weights yet, without asking the server", async () => {
    mockFetch(() => ({ status: 500, body: {} }));
    runsStore.setState({ job: job({ status: "queued", step: 0 }) });
    await select("x->hidden");
    expect($('[data-testid="edge-flow"]')!.textContent).toContain("Run #5 has no weights yet");
    expect(requests).toHaveLength(0);
  });

  it("asks for a run when none is open", async () => {
    mockFetch(() => ({ status: 500, body: {} }));
    await select("x->hidden");
    expect($('[data-testid="edge-flow"]')).toBeNull();
    expect($('[data-testid="edge-inspector"]')!.textContent).toContain("Open a run");
    expect(requests).toHaveLength(0);
  });
});

describe("the next character", () => {
  const answer = (prompt: string, truncated = false) => ({
    prompt_used: prompt.slice(-8), truncated, context: 8,
    top: [{ char: "e", p: 0.5 }, { char: " ", p: 0.2 }, { char: "a", p: 0.1 }, { char: "\n", p: 0.05 }, { char: "o", p: 0.01 }],
    heads: [0, 1].map((head) => ({
      module: "blocks.0.attn", head, tokens: [...prompt.slice(-8)],
      weights: [...prompt.slice(-8)].map((_, i, all) => (i === all.length - 1 ? 1 : 0)),
    })),
  });

  it("shows the five likeliest characters and where each head looked", async () => {
    mockFetch((method, url, body) => {
      expect(method).toBe("POST");
      expect(url.pathname).toBe("/api/jobs/5/next");
      const prompt = (body as { prompt: string }).prompt;
      return { status: 200, body: answer(prompt, prompt.length > 8) };
    });
    runsStore.setState({ job: job({ dataset: "shakespeare" }) });
    await act(async () => root.render(<NextChar />));
    await act(async () => typeInto($<HTMLTextAreaElement>('[data-testid="next-prompt"]')!, "to be or not"));
    await settle(100, 5);
    const items = $$('[data-testid="next-top"] li');
    expect(items).toHaveLength(5);
    expect(items[0].textContent).toContain("e");
    expect(items[0].textContent).toContain("50.0%");
    expect(items[1].textContent).toContain("␣");
    const strips = $$('[data-testid="next-head"]');
    expect(strips).toHaveLength(2);
    expect(strips[0].textContent).toContain("blocks.0.attn · 0");
    expect(strips[0].textContent).toContain("e␣or␣not"); // the last 8 characters the model read
    expect($('[data-testid="next-char"]')!.textContent).toContain("used the last 8 of your 12");
    // typing fast asks once, for what was typed last
    expect(requests.filter((r) => r.method === "POST").map((r) => (r.body as { prompt: string }).prompt)).toEqual(["to be or not"]);
  });

  it("shows the server's reason for a prompt it refuses", async () => {
    mockFetch(() => ({ status: 400, body: { error: "the prompt has characters the model does not know: 'é'" } }));
    runsStore.setState({ job: job({ dataset: "shakespeare" }) });
    await act(async () => root.render(<NextChar />));
    await act(async () => typeInto($<HTMLTextAreaElement>('[data-testid="next-prompt"]')!, "café"));
    await settle(100, 5);
    expect($('[role="alert"]')!.textContent).toContain("'é'");
    expect($$('[data-testid="next-top"] li')).toHaveLength(0);
  });
});

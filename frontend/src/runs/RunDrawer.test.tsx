import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { GraphDocument } from "../api/types";
import { useEditor } from "../store/editor";
import { BENCHMARK_KIND } from "../test/benchmark";
import { SERVED } from "../test/catalog";
import { FPGA_KIND } from "../test/fpga";
import { RUN_KINDS } from "../test/runKinds";
import { RunDrawer } from "./RunDrawer";
import { runsStore } from "./store";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const job = (over: Record<string, unknown> = {}) => ({
  id: 5, graph: 7, graph_name: "char-gpt", version: 3, kind: "train", dataset: "harbour", upload: null,
  dataset_options: {}, config: { steps: 300 }, queue: "cpu", time_limit: 21600, status: "succeeded",
  step: 300, total_steps: 300, position: null, attempts: 1, device: "cpu", worker: "w", error: "",
  cancel_requested: false, published: true, last_seq: 6, metrics: { val_loss: 1.5 }, downloads: ["onnx", "pytorch", "weights"],
  download_errors: {}, created_at: "2025-01-01T00:00:00Z", started_at: null, finished_at: null, heartbeat_at: null, weights_of: null, result: null, ...over,
});

const EVENTS = [
  { type: "status", seq: 1, step: 0, time: 0, status: "queued", total: 300, attempts: 0, device: "", worker: "", error: "" },
  { type: "metric", seq: 2, step: 10, time: 0, name: "train_loss", value: 4 },
  { type: "metric", seq: 3, step: 20, time: 0, name: "train_loss", value: 3 },
  { type: "metric", seq: 4, step: 20, time: 0, name: "val_loss", value: 3.2 },
  { type: "sample", seq: 5, step: 20, time: 0, text: "the harbour" },
  { type: "status", seq: 6, step: 300, time: 0, status: "succeeded", total: 300, attempts: 1, device: "cpu", worker: "w", error: "" },
];

type Route = (method: string, url: URL, body: unknown) => { status: number; body: unknown } | undefined;

let root: Root;
let container: HTMLElement;
let requests: { method: string; path: string; body: unknown }[];

function mockFetch(route: Route) {
  vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
    const url = new URL(input, "http://localhost");
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    requests.push({ method, path: url.pathname + url.search, body });
    const answer = route(method, url, body) ?? (
      url.pathname === "/api/datasets"
        ? { status: 200, body: [
          { name: "digits", kind: "image", description: "8×8 digits", tasks: ["classification"], gives: "float32 [B, 64]", options: {}, source: "scikit-learn", licence: "CC-BY-4.0" },
          { name: "harbour", kind: "text", description: "prose", tasks: ["next_token"], gives: "int64 [B, T] characters", options: {}, source: "written for Shipyard", licence: "Apache-2.0" },
          { name: "modadd", kind: "tokens", description: "(a + b) mod p", tasks: ["classification"], gives: "tokens", options: { modulus: "p (default 10)" }, source: "generated", licence: "Apache-2.0" },
        ] }
        : url.pathname === "/api/uploads" ? { status: 200, body: [] }
          : url.pathname === "/api/run-kinds" ? { status: 200, body: RUN_KINDS }
            : { status: 404, body: { error: "not here" } });
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "Content-Type": "application/json" } });
  }));
}

/** A WebSocket that never connects (the drawer tests follow no live run). */
class SilentSocket extends EventTarget {
  static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
  readyState = 0;
  binaryType = "blob";
  constructor(public url: string) {
    super();
  }
  close() {
    this.readyState = 3;
  }
  send() {}
}

async function render(props: Partial<Parameters<typeof RunDrawer>[0]> = {}) {
  const ensureSaved = vi.fn(async () => ({ graphId: 7, version: 3 }));
  await act(async () => {
    root.render(
      <RunDrawer graphId={7} shareToken={null} readOnly={false} starterDataset="harbour" ensureSaved={ensureSaved}
        open onOpenChange={() => {}} {...props} />,
    );
  });
  await settle();
  return { ensureSaved };
}

async function settle() {
  for (let i = 0; i < 5; i++) {
    await act(async () => {
      await new Promise((r) => setTimeout(r, 20));
    });
  }
}

const $ = <T extends Element = HTMLElement>(selector: string) => container.querySelector<T>(selector);

function type(input: HTMLInputElement, value: string) {
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!;
  setter.call(input, value);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

function button(name: string): HTMLButtonElement | undefined {
  return [...container.querySelectorAll("button")].find((b) => b.textContent?.trim() === name);
}

beforeEach(() => {
  requests = [];
  vi.stubGlobal("WebSocket", SilentSocket);
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  runsStore.getState().setContext({ graphId: null, share: null, readOnly: false });
  runsStore.setState({ tab: "run", mode: "train", datasets: [], uploads: [], runKinds: [], startError: null, startProblems: [] });
});

afterEach(() => {
  act(() => root.unmount());
  runsStore.getState().closeRun();
  container.remove();
  vi.unstubAllGlobals();
});

describe("the runs drawer", () => {
  it("starts a run with the starter's dataset after saving, and shows its place in the queue", async () => {
    mockFetch((method, url) => {
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [] };
      if (url.pathname === "/api/jobs" && method === "POST") {
        return { status: 201, body: job({ id: 9, status: "queued", step: 0, total_steps: 50, position: 2, last_seq: 1, downloads: [], metrics: {} }) };
      }
      return undefined;
    });
    const { ensureSaved } = await render();
    const dataset = $<HTMLSelectElement>('[data-testid="run-dataset"]')!;
    expect(dataset.value).toBe("harbour");
    // Where the data comes from and its licence, before it is used.
    expect($('[data-testid="dataset-provenance"]')!.textContent).toBe("Source: written for Shipyard · Licence: Apache-2.0");
    await act(async () => type($<HTMLInputElement>('[data-testid="run-steps"]')!, "50"));
    await act(async () => button("Start run")!.click());
    await settle();
    expect(ensureSaved).toHaveBeenCalledOnce();
    const post = requests.find((r) => r.method === "POST")!;
    expect(post.path).toBe("/api/jobs");
    expect(post.body).toEqual({
      graph: 7, version: 3, dataset: "harbour",
      config: { steps: 50, batch_size: 64, lr: 0.003, device: "auto" },
    });
    const status = $('[data-testid="run-status"]')!;
    expect(status.textContent).toContain("2nd in the cpu queue");
    expect(status.getAttribute("data-status")).toBe("queued");
    expect($('[data-testid="run-progress"]')!.getAttribute("aria-valuenow")).toBe("0");
    expect(button("Cancel run")).toBeDefined();
  });

  it("does not start when the user cancels the save", async () => {
    mockFetch((method, url) => (url.pathname === "/api/jobs" && method === "GET" ? { status: 200, body: [] } : undefined));
    await render({ ensureSaved: vi.fn(async () => null) });
    await act(async () => button("Start run")!.click());
    await settle();
    expect(requests.some((r) => r.method === "POST")).toBe(false);
  });

  it("says in words why the server refused a run, and marks the field it names", async () => {
    // The message is of no importance to the marking: the field comes from `problems`.
    const message = "the snapshots would be too many";
    mockFetch((method, url) => {
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [] };
      if (method === "POST") {
        return { status: 400, body: { error: message, problems: [{ field: "config.attention_interval", message, node: null }] } };
      }
      return undefined;
    });
    await render();
    await act(async () => button("Start run")!.click());
    await settle();
    expect($('[data-testid="run-error"]')!.textContent).toBe(message);
    // the advanced section opens on the setting named, and its field is marked
    expect($<HTMLDetailsElement>(".runs-advanced")!.open).toBe(true);
    const field = $('[data-field="attention_interval"]')!;
    expect(field.classList.contains("field-problem")).toBe(true);
    expect(field.textContent).toContain(message);
    expect($('[data-field="steps"]')!.classList.contains("field-problem")).toBe(false);
  });

  it("refuses a step count that is not a number before asking the server", async () => {
    mockFetch((method, url) => (url.pathname === "/api/jobs" && method === "GET" ? { status: 200, body: [] } : undefined));
    const { ensureSaved } = await render();
    await act(async () => type($<HTMLInputElement>('[data-testid="run-steps"]')!, "many"));
    await act(async () => button("Start run")!.click());
    expect(ensureSaved).not.toHaveBeenCalled();
    expect(container.textContent).toContain("Steps expected a number");
  });

  it("renders every setting of the served schema by its title, the basic ones first and prefilled", async () => {
    mockFetch((method, url) => (url.pathname === "/api/jobs" && method === "GET" ? { status: 200, body: [] } : undefined));
    await render();
    const schema = RUN_KINDS[0].settings_schema as { properties: Record<string, { title: string; "x-basic"?: boolean }> };
    const names = Object.keys(schema.properties);
    const basic = names.filter((n) => schema.properties[n]["x-basic"]);
    const shown = [...container.querySelectorAll("[data-field]")].map((f) => f.getAttribute("data-field"));
    expect(shown).toEqual([...basic, ...names.filter((n) => !basic.includes(n))]);
    for (const name of names) {
      expect($(`[data-field="${name}"] label`)!.textContent).toBe(schema.properties[name].title);
    }
    expect($<HTMLInputElement>('[data-testid="run-steps"]')!.value).toBe("300");
    expect($<HTMLInputElement>('[data-testid="run-min_lr"]')!.placeholder).toBe("default lr / 10");
    expect($<HTMLInputElement>('[data-testid="run-beta2"]')!.value).toBe("0.95");
  });

  it("sends only what was set (blank: the server's default), and none for no clipping", async () => {
    mockFetch((method, url) => {
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [] };
      if (url.pathname === "/api/jobs" && method === "POST") return { status: 201, body: job({ id: 9, status: "queued", downloads: [] }) };
      return undefined;
    });
    await render();
    await act(async () => type($<HTMLInputElement>('[data-testid="run-lr"]')!, ""));
    await act(async () => type($<HTMLInputElement>('[data-testid="run-grad_clip"]')!, "none"));
    await act(async () => type($<HTMLInputElement>('[data-testid="run-beta2"]')!, "0.99"));
    await act(async () => button("Start run")!.click());
    await settle();
    const post = requests.find((r) => r.method === "POST")!;
    expect((post.body as { config: unknown }).config).toEqual({ steps: 300, batch_size: 64, device: "auto", grad_clip: null, beta2: 0.99 });
  });

  it("shows a shared graph's published run read-only, with its chart and downloads", async () => {
    mockFetch((_method, url) => {
      if (url.pathname === "/api/shared/tok/jobs") return { status: 200, body: [job()] };
      if (url.pathname === "/api/jobs/5") return { status: 200, body: job() };
      if (url.pathname === "/api/jobs/5/metrics") {
        const since = Number(url.searchParams.get("since"));
        expect(url.searchParams.get("share")).toBe("tok");
        return { status: 200, body: { events: EVENTS.filter((e) => e.seq > since), last_seq: 6, more: false } };
      }
      return undefined;
    });
    await render({ graphId: null, shareToken: "tok", readOnly: true });
    expect(button("Start run")).toBeUndefined();
    expect(button("Cancel run")).toBeUndefined();
    expect($('[data-testid="run-status"]')!.textContent).toContain("Succeeded");
    expect($('[data-testid="loss-chart"]')!.getAttribute("data-points")).toBe("3");
    const links = [...container.querySelectorAll<HTMLAnchorElement>(".runs-downloads a")].map((a) => a.getAttribute("href"));
    expect(links).toContain("/api/jobs/5/download?format=onnx&share=tok");
    expect(links).toContain("/api/jobs/5/download?format=weights&share=tok");
    // a text run has a Samples tab, newest first
    await act(async () => button("Samples")!.click());
    expect($('[data-testid="samples"]')!.textContent).toContain("the harbour");
    expect(button("Next character")).toBeDefined(); // a character model: what comes next
    expect(requests.some((r) => r.method !== "GET")).toBe(false);
    expect($('[data-testid="publish-run"]')).toBeNull(); // only the owner publishes
  });

  it("starts a benchmark from its own form, with the weights of a finished training run, and opens its results", async () => {
    mockFetch((method, url) => {
      if (url.pathname === "/api/run-kinds") return { status: 200, body: [...RUN_KINDS, BENCHMARK_KIND] };
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [job(), job({ id: 4, status: "failed" })] };
      if (url.pathname === "/api/jobs" && method === "POST") {
        return { status: 201, body: job({ id: 9, kind: "benchmark", status: "queued", position: 1, downloads: [], metrics: {}, last_seq: 1 }) };
      }
      return undefined;
    });
    await render();
    await act(async () => $('[data-testid="run-mode-benchmark"]')!.click());
    await settle();
    expect(button("Start run")).toBeUndefined();
    expect([...container.querySelectorAll("[data-field]")].map((f) => f.getAttribute("data-field")))
      .toEqual(["batch_sizes", "backends", "warmup", "repeats", "device", "seed", "per_node"]);
    await act(async () => type($<HTMLInputElement>('[data-testid="run-batch_sizes"]')!, "1, 4"));
    await act(async () => type($<HTMLInputElement>('[data-testid="run-repeats"]')!, "3"));
    const backend = (name: string) => $<HTMLInputElement>(`[data-testid="run-backends"] input[value="${name}"]`)!;
    await act(async () => backend("compile_bf16").click());
    await act(async () => backend("eager_bf16").click());
    // the finished training run with weights is offered, the failed one is not
    const weights = $<HTMLSelectElement>('[data-testid="bench-weights"]')!;
    expect([...weights.options].map((o) => o.value)).toEqual(["", "5"]);
    await act(async () => {
      weights.value = "5";
      weights.dispatchEvent(new Event("change", { bubbles: true }));
    });
    await act(async () => button("Start benchmark")!.click());
    await settle();
    const post = requests.find((r) => r.method === "POST" && r.path === "/api/jobs")!;
    expect(post.body).toEqual({
      graph: 7, version: 3, kind: "benchmark", weights: 5,
      config: { batch_sizes: [1, 4], repeats: 3, backends: ["eager", "compile", "onnxruntime"] },
    });
    expect($('[role="tab"][aria-selected="true"]')!.textContent).toBe("Results");
    expect($('[data-testid="run-status"]')!.textContent).toContain("Benchmark #9");
  });

  it("refuses to benchmark no backend at all", async () => {
    mockFetch((method, url) => {
      if (url.pathname === "/api/run-kinds") return { status: 200, body: [...RUN_KINDS, BENCHMARK_KIND] };
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [] };
      return undefined;
    });
    await render();
    await act(async () => $('[data-testid="run-mode-benchmark"]')!.click());
    const boxes = [...container.querySelectorAll<HTMLInputElement>('[data-testid="run-backends"] input')];
    for (const box of boxes.slice(1)) await act(async () => box.click());
    await act(async () => boxes[0].click());
    expect(boxes[0].checked).toBe(true);
    expect(container.textContent).toContain("Backends needs at least one");
  });

  it("publishes a finished run from its status, and unpublishes it", async () => {
    let published = false;
    mockFetch((method, url, body) => {
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [job({ published })] };
      if (url.pathname === "/api/jobs/5" && method === "PATCH") {
        published = (body as { published: boolean }).published;
        return { status: 200, body: job({ published }) };
      }
      if (url.pathname === "/api/jobs/5") return { status: 200, body: job({ published }) };
      if (url.pathname === "/api/jobs/5/metrics") return { status: 200, body: { events: EVENTS, last_seq: 6, more: false } };
      return undefined;
    });
    await render();
    await act(async () => runsStore.getState().openRun(5));
    await settle();
    const toggle = () => $<HTMLInputElement>('.runs-open [data-testid="publish-run"]')!;
    expect(toggle().checked).toBe(false);
    await act(async () => toggle().click());
    await settle();
    expect(requests.filter((r) => r.method === "PATCH")).toEqual([{ method: "PATCH", path: "/api/jobs/5", body: { published: true } }]);
    expect(toggle().checked).toBe(true);
    expect(runsStore.getState().runs[0].published).toBe(true);
    await act(async () => toggle().click());
    await settle();
    expect(toggle().checked).toBe(false);
    expect(published).toBe(false);
  });

  it("starts an FPGA run from its form: a sweep, the Verilog switch and a precision for one node; the check's marks reach the canvas", async () => {
    const doc = {
      format: "shipyard.graph/v1", name: "m",
      nodes: [
        { id: "x", type: "Input", params: { shape: [8] } }, { id: "fc", type: "Linear", params: { out_features: 4 } },
        { id: "sm", type: "Softmax" }, { id: "y", type: "Output" },
      ],
      edges: [{ from: "x", to: "fc" }, { from: "fc", to: "sm" }, { from: "sm", to: "y" }],
    } as GraphDocument;
    useEditor.getState().setCatalog(SERVED);
    useEditor.getState().load(doc, { graph: { id: 7, name: "m", head: 3 }, savedDoc: doc });
    const warning = { message: "Softmax is computed with lookup tables of exp and 1/x on the FPGA", node: "sm", field: "type" };
    mockFetch((method, url) => {
      if (url.pathname === "/api/run-kinds") return { status: 200, body: [...RUN_KINDS, BENCHMARK_KIND, FPGA_KIND] };
      if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [] };
      if (url.pathname === "/api/jobs/check") {
        return { status: 200, body: { ok: true, error: null, problems: [], queue: "fpga", warnings: [warning], cpu_seconds: null } };
      }
      if (url.pathname === "/api/jobs" && method === "POST") {
        return { status: 201, body: job({ id: 12, kind: "fpga", status: "queued", downloads: [], metrics: {}, last_seq: 1 }) };
      }
      return undefined;
    });
    try {
      await render();
      await act(async () => $('[data-testid="run-mode-fpga"]')!.click());
      await settle();
      expect([...container.querySelectorAll("[data-field]")].map((f) => f.getAttribute("data-field")))
        .toEqual(["precision", "precision_overrides", "io_type", "sweep_bits", "samples", "rtl"]);
      await act(async () => type($<HTMLInputElement>('[data-testid="run-sweep_bits"]')!, "8, 12"));
      await act(async () => $<HTMLInputElement>('[data-testid="run-rtl"]')!.click());
      // The per-node precision: a row, its node picked from the graph, its precision typed.
      await act(async () => $('[data-testid="run-precision_overrides-add"]')!.click());
      const nodeSelect = $<HTMLSelectElement>('[data-testid="run-precision_overrides-node"]')!;
      expect([...nodeSelect.options].map((o) => o.value)).toEqual(["fc", "sm"]);
      await act(async () => {
        nodeSelect.value = "sm";
        nodeSelect.dispatchEvent(new Event("change", { bubbles: true }));
      });
      await act(async () => type($<HTMLInputElement>('[data-testid="run-precision_overrides-value"]')!, "ap_fixed<18,8>"));
      await settle();
      await act(async () => new Promise((r) => setTimeout(r, 350))); // the check's delay
      await settle();
      const checks = requests.filter((r) => r.path === "/api/jobs/check");
      expect(checks.length).toBeGreaterThan(0);
      expect(checks[checks.length - 1].body).toMatchObject({
        kind: "fpga", config: { sweep_bits: [8, 12], rtl: true, precision_overrides: { sm: "ap_fixed<18,8>" } },
      });
      // The approximate block: listed under the form, and marked on the canvas's node.
      expect($('[data-testid="fpga-warnings"]')!.textContent).toContain("sm: Softmax is computed with lookup tables");
      expect(runsStore.getState().checkMarks.warnings).toEqual([warning]);
      await act(async () => button("Start FPGA run")!.click());
      await settle();
      const post = requests.find((r) => r.method === "POST" && r.path === "/api/jobs")!;
      expect(post.body).toEqual({
        graph: 7, version: 3, kind: "fpga",
        config: { sweep_bits: [8, 12], rtl: true, precision_overrides: { sm: "ap_fixed<18,8>" } },
      });
      expect($('[role="tab"][aria-selected="true"]')!.textContent).toBe("Results");
      expect($('[data-testid="run-status"]')!.textContent).toContain("FPGA run #12");
      // Another kind of run: the FPGA form goes, and its marks with it.
      await act(async () => $<HTMLButtonElement>("#runs-tab-run")!.click());
      await act(async () => new Promise((r) => setTimeout(r, 350)));
      await settle();
      expect(runsStore.getState().checkMarks.warnings).toEqual([warning]);
      await act(async () => $('[data-testid="run-mode-train"]')!.click());
      await settle();
      expect(runsStore.getState().checkMarks.warnings).toEqual([]);
    } finally {
      act(() => useEditor.setState({ ready: false }));
    }
  });
});

const HOSTILE = "<img src=x onerror=alert(1)>.csv";
const MANIFEST = {
  "@type": "sc:Dataset", name: HOSTILE, description: "An upload: 40 rows.", license: "not declared",
  citeAs: "x (source not declared)", "shipyard:source": "not declared", "shipyard:task": "classification",
  "shipyard:samples": 40, "shipyard:sizeBytes": 2048, "shipyard:sha256": "ab".repeat(32),
  "shipyard:sha256Of": "the bytes of the file, exactly as read", "shipyard:vocabulary": ["no", "yes"],
  "shipyard:vocabularyOf": "classes",
  "shipyard:split": { rule: "samples shuffled (seed 0)", train: 32, validation: 8, unit: "samples" },
  "shipyard:preprocessing": ["parsed as CSV", "features read as float32 numbers, not rescaled"],
};
const CARD = "# Model card: \\<img src=x onerror=alert\\(1\\)\\>, run 5\n\n## Dataset\n\n- Licence: not declared\n- Name: <script>alert(1)</script>\n";

describe("the dataset tab", () => {
  const routes = (manifest: { status: number; body: unknown }) => (method: string, url: URL) => {
    if (url.pathname === "/api/jobs" && method === "GET") return { status: 200, body: [job()] };
    if (url.pathname === "/api/jobs/5") return { status: 200, body: job() };
    if (url.pathname === "/api/jobs/5/metrics") return { status: 200, body: { events: EVENTS, last_seq: 6, more: false } };
    if (url.pathname === "/api/jobs/5/manifest") return manifest;
    if (url.pathname === "/api/jobs/5/card") return { status: 200, body: { markdown: CARD } };
    return undefined;
  };

  async function openDataset() {
    await render();
    await act(async () => runsStore.getState().openRun(5));
    await settle();
    await act(async () => button("Dataset")!.click());
    await settle();
  }

  it("shows the run's manifest, links its download, and renders the model card with hostile names as text", async () => {
    mockFetch(routes({ status: 200, body: MANIFEST }));
    await openDataset();
    expect($('[data-testid="dataset-name"]')!.textContent).toBe(HOSTILE);
    expect($('[data-testid="dataset-licence"]')!.textContent).toBe("not declared");
    expect($('[data-testid="dataset-source"]')!.textContent).toBe("not declared");
    expect($('[data-testid="dataset-sha"]')!.textContent).toBe("ab".repeat(32));
    expect($('[data-testid="dataset-split"]')!.textContent).toContain("train 32 · validation 8 samples");
    expect($('[data-testid="dataset-samples"]')!.textContent).toBe("40 samples");
    expect([...container.querySelectorAll('[data-testid="dataset-steps"] li')].map((li) => li.textContent))
      .toEqual(MANIFEST["shipyard:preprocessing"]);
    expect($<HTMLAnchorElement>('[data-testid="manifest-download"]')!.getAttribute("href")).toBe("/api/jobs/5/manifest?download=1");
    expect(container.querySelector("img")).toBeNull();

    await act(async () => button("Model card")!.click());
    await settle();
    const card = $('[data-testid="model-card"]')!;
    expect(card.querySelector("h3")!.textContent).toBe(`Model card: <img src=x onerror=alert(1)>, run 5`);
    expect(card.textContent).toContain("<script>alert(1)</script>");
    expect(card.querySelector("img, script")).toBeNull();
    expect(card.querySelector("h4")!.textContent).toBe("Dataset");
  });

  it("says so when a run recorded no manifest, and offers no download", async () => {
    mockFetch(routes({ status: 404, body: { error: "run 5 recorded no dataset manifest: it trains nothing" } }));
    await openDataset();
    expect($('[data-testid="dataset-tab"]')!.textContent).toContain("run 5 recorded no dataset manifest");
    expect($('[data-testid="manifest-download"]')).toBeNull();
  });
});

import { describe, expect, it } from "vitest";

import type { Job } from "../api/types";
import { type DrawerView, lossFell, runStepDone, runStepHint } from "./rules";

const job = (over: Partial<Job> = {}): Job => ({
  id: 4, graph: 7, graph_name: "g", version: 2, kind: "train", dataset: "shakespeare", upload: null,
  dataset_options: {}, config: { steps: 200 }, queue: "cpu", time_limit: 21600, status: "succeeded",
  step: 200, total_steps: 200, position: null, waiting_reason: "", priority: 0, retry_of: null, attempts: 1, device: "cpu", worker: "w", error: "",
  cancel_requested: false, published: false, last_seq: 5, metrics: {}, nonfinite: {}, downloads: [], download_errors: {}, admin_actions: [],
  created_at: "2025-01-01T00:00:00Z", started_at: null, finished_at: null, heartbeat_at: null, weights_of: null, result: null, ...over,
});

const falling = { train_loss: { steps: [0, 100, 200], values: [4.8, 3.1, 2.5] }, val_loss: { steps: [100, 200], values: [3.3, 2.7] } };

const view = (over: Partial<DrawerView> = {}): DrawerView => ({
  graphId: 7, loggedIn: true, drawerOpen: true, tab: "loss", job: job(), series: falling,
  attentionModules: 4, samples: 2, ...over,
});

describe("lossFell", () => {
  it("compares the validation loss's last point with its first when it has two", () => {
    expect(lossFell(falling)).toBe(true);
    // Training loss falls, validation loss rises: memorizing is not learning.
    expect(lossFell({ ...falling, val_loss: { steps: [100, 200], values: [2.7, 3.3] } })).toBe(false);
  });

  it("falls back to the training loss, and skips diverged points", () => {
    expect(lossFell({ train_loss: { steps: [0, 1, 2], values: [2, NaN, 1.5] } })).toBe(true);
    expect(lossFell({ train_loss: { steps: [0, 1], values: [2, 2.5] }, val_loss: { steps: [1], values: [1] } })).toBe(false);
    expect(lossFell({ train_loss: { steps: [0], values: [2] } })).toBe(false);
    expect(lossFell({})).toBe(false);
  });
});

describe("run steps", () => {
  it("a run step is done by a finished run of this model whose loss fell", () => {
    expect(runStepDone("run", view())).toBe(true);
    expect(runStepDone("run", view({ job: job({ status: "running", step: 50 }) }))).toBe(false);
    expect(runStepDone("run", view({ job: job({ status: "failed" }) }))).toBe(false);
    expect(runStepDone("run", view({ job: job({ graph: 8 }) }))).toBe(false);
    expect(runStepDone("run", view({ job: job({ kind: "benchmark" }) }))).toBe(false);
    expect(runStepDone("run", view({ series: { train_loss: { steps: [0, 1], values: [2, 3] } } }))).toBe(false);
    expect(runStepDone("run", view({ graphId: null }))).toBe(false);
  });

  it("the attention step is done when the attention tab is open on a finished run with maps", () => {
    expect(runStepDone("attention", view({ tab: "attention" }))).toBe(true);
    expect(runStepDone("attention", view({ tab: "loss" }))).toBe(false);
    expect(runStepDone("attention", view({ tab: "attention", drawerOpen: false }))).toBe(false);
    expect(runStepDone("attention", view({ tab: "attention", attentionModules: 0 }))).toBe(false);
    expect(runStepDone("attention", view({ tab: "attention", job: job({ status: "running" }) }))).toBe(false);
  });

  it("the generate step is done when the samples tab shows the run's text", () => {
    expect(runStepDone("generate", view({ tab: "samples" }))).toBe(true);
    expect(runStepDone("generate", view({ tab: "samples", samples: 0 }))).toBe(false);
    expect(runStepDone("generate", view({ tab: "attention" }))).toBe(false);
  });

  it("a canvas step is never done by the drawer", () => {
    expect(runStepDone("canvas", view({ tab: "samples" }))).toBe(false);
  });

  it("says what to press next", () => {
    expect(runStepHint("run", view({ job: null }))).toMatch(/^Press ▶ Run/);
    expect(runStepHint("run", view({ job: job({ status: "running", step: 50 }) }))).toBe(
      "Training: step 50 of 200. The loss chart fills as it learns.");
    expect(runStepHint("run", view({ series: { train_loss: { steps: [0, 1], values: [2, 3] } } }))).toMatch(/did not fall/);
    expect(runStepHint("run", view({ loggedIn: false }))).toMatch(/sign up or log in/);
    expect(runStepHint("attention", view({ job: null }))).toMatch(/First finish a run/);
    expect(runStepHint("attention", view())).toBe("Open the Attention tab of the runs drawer.");
    expect(runStepHint("generate", view())).toBe("Open the Samples tab of the runs drawer.");
    expect(runStepHint("canvas", view())).toBeNull();
  });
});

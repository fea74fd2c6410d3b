import { afterEach, describe, expect, it, vi } from "vitest";

import { ApiError } from "../api/client";
import type { Dataset, Job, Upload } from "../api/types";
import { createRunsStore, describeError, isTextRun, type RunsDeps } from "./store";
import { followRun, type SocketLike } from "./stream";

const job = (over: Partial<Job> = {}): Job => ({
  id: 1, graph: 7, graph_name: "g", version: 2, kind: "train", dataset: "harbour", upload: null,
  dataset_options: {}, config: { steps: 300 }, queue: "cpu", time_limit: 21600, status: "succeeded",
  step: 300, total_steps: 300, position: null, waiting_reason: "", priority: 0, retry_of: null, attempts: 1, device: "cpu", worker: "w", error: "",
  cancel_requested: false, published: false, last_seq: 5, metrics: {}, nonfinite: {}, downloads: [], download_errors: {}, admin_actions: [],
  created_at: "2025-01-01T00:00:00Z", started_at: null, finished_at: null, heartbeat_at: null, weights_of: null, result: null, ...over,
});

const metric = (seq: number, step: number, name: string, value: number) => ({ type: "metric", seq, step, time: 0, name, value });
const statusEvent = (seq: number, status: string, step = 0) => ({
  type: "status", seq, step, time: 0, status, total: 300, attempts: 1, device: "cpu", worker: "w", error: "",
});

class FakeSocket implements SocketLike {
  listeners: Record<string, ((e: never) => void)[]> = {};
  closed = false;
  addEventListener(type: string, l: (e: never) => void) {
    (this.listeners[type] ??= []).push(l);
  }
  close() {
    this.closed = true;
  }
  send(message: unknown) {
    for (const l of this.listeners.message ?? []) (l as (e: unknown) => void)({ data: JSON.stringify(message) });
  }
}

function makeDeps(events: Record<string, unknown>[], over: Partial<RunsDeps["api"]> = {}) {
  const sockets: FakeSocket[] = [];
  const followers: ReturnType<typeof followRun>[] = [];
  const api = {
    jobs: vi.fn(async () => [job()]),
    sharedJobs: vi.fn(async () => [job({ published: true })]),
    job: vi.fn(async (id: number) => job({ id })),
    startJob: vi.fn(async () => job({ id: 9, status: "queued", step: 0, last_seq: 1, position: 2 })),
    cancelJob: vi.fn(async (id: number) => job({ id, status: "queued", cancel_requested: true })),
    events: vi.fn(async (_id: number, since: number) => {
      const rest = events.filter((e) => (e.seq as number) > since);
      return { events: rest.slice(0, 2), last_seq: events.length, more: rest.length > 2 };
    }),
    datasets: vi.fn(async () => [{ name: "harbour", kind: "text", description: "prose", tasks: ["next_token"], gives: "int64 [B, T] characters", options: {} }]),
    uploads: vi.fn(async () => []),
    ...over,
  } as unknown as RunsDeps["api"];
  const deps: RunsDeps = {
    api,
    schedule: (cb) => {
      cb();
      return () => {};
    },
    follow: (options) => {
      const socket = new FakeSocket();
      sockets.push(socket);
      const f = followRun({ ...options, connect: () => socket });
      followers.push(f);
      return f;
    },
  };
  return { deps, api, sockets, followers };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => {
  vi.useRealTimers();
});

describe("runs store", () => {
  it("opens an ended run over REST only and derives its series", async () => {
    const events = [statusEvent(1, "queued"), statusEvent(2, "running"), metric(3, 10, "train_loss", 4), metric(4, 10, "val_loss", 4.2), statusEvent(5, "succeeded", 10)];
    const { deps, api, sockets } = makeDeps(events);
    const store = createRunsStore(deps);
    await store.getState().openRun(1);
    const s = store.getState();
    expect(api.events).toHaveBeenCalledTimes(3); // pages of 2
    expect(sockets).toHaveLength(0);
    expect(s.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(s.derived.series.train_loss.values).toEqual([4]);
    expect(s.derived.series.val_loss.values).toEqual([4.2]);
    expect(s.job?.status).toBe("succeeded");
    expect(s.eventsLoading).toBe(false);
  });

  it("follows a running run: live events update the chart data and the run's status", async () => {
    const events: Record<string, unknown>[] = [statusEvent(1, "queued"), statusEvent(2, "running")];
    const { deps, api, sockets, followers } = makeDeps(events, {
      job: vi.fn(async () => job({ status: "running", step: 0, last_seq: 2 })),
    } as Partial<RunsDeps["api"]>);
    const store = createRunsStore(deps);
    await store.getState().openRun(1);
    const socket = sockets[0];
    socket.send({ type: "state", job: job({ status: "running", step: 0, last_seq: 2 }), last_seq: 2 });
    await followers[0].idle();
    expect(store.getState().events.map((e) => e.seq)).toEqual([1, 2]);

    events.push(metric(3, 10, "train_loss", 3.5));
    socket.send(events[2]);
    await followers[0].idle();
    expect(store.getState().derived.series.train_loss.values).toEqual([3.5]);
    expect(store.getState().job?.step).toBe(10);

    (api.job as ReturnType<typeof vi.fn>).mockResolvedValue(job({ status: "succeeded", downloads: ["weights", "onnx"], last_seq: 4 }));
    events.push(statusEvent(4, "succeeded", 300));
    socket.send(events[3]);
    await followers[0].idle();
    await flush();
    const s = store.getState();
    expect(s.job?.status).toBe("succeeded");
    expect(s.job?.downloads).toEqual(["weights", "onnx"]); // read again at the end
    expect(s.connection).toBe("ended");
    expect(socket.closed).toBe(true);
  });

  it("starts a run and opens it, or says why not", async () => {
    const { deps, api } = makeDeps([statusEvent(1, "queued")]);
    const store = createRunsStore(deps);
    store.getState().setContext({ graphId: 7, share: null, readOnly: false });
    await flush();
    const started = await store.getState().start({ graph: 7, version: 2, dataset: "harbour" });
    expect(started?.id).toBe(9);
    expect(store.getState().job?.id).toBe(9);
    expect(store.getState().runs[0].id).toBe(9);

    (api.startJob as ReturnType<typeof vi.fn>).mockRejectedValueOnce(new ApiError(429, {
      error: "you have 5 runs waiting in the queue, the most allowed (SHIPYARD_MAX_QUEUED_JOBS); cancel one or wait for one to start",
    }));
    expect(await store.getState().start({ graph: 7, dataset: "harbour" })).toBeNull();
    expect(store.getState().startError).toMatch(/^Queue quota reached: you have 5 runs waiting/);
    expect(store.getState().job?.id).toBe(9); // the open run stays
  });

  it("shows a queued run's place in the queue as it moves", async () => {
    vi.useFakeTimers();
    const { deps, api } = makeDeps([statusEvent(1, "queued")]);
    deps.pollMs = 1000;
    (api.job as ReturnType<typeof vi.fn>).mockResolvedValue(job({ status: "queued", position: 3, last_seq: 1, step: 0 }));
    const store = createRunsStore(deps);
    await store.getState().openRun(1);
    expect(store.getState().job?.position).toBe(3);
    (api.job as ReturnType<typeof vi.fn>).mockResolvedValue(job({ status: "queued", position: 1, last_seq: 1, step: 0 }));
    await vi.advanceTimersByTimeAsync(1000);
    expect(store.getState().job?.position).toBe(1);
  });

  it("lists a shared graph's published runs and opens the newest", async () => {
    const { deps, api } = makeDeps([statusEvent(1, "succeeded")]);
    const store = createRunsStore(deps);
    store.getState().setContext({ graphId: null, share: "tok", readOnly: true });
    await flush();
    await flush();
    expect(api.sharedJobs).toHaveBeenCalledWith("tok");
    expect(api.jobs).not.toHaveBeenCalled();
    expect(store.getState().runs).toHaveLength(1);
    expect(store.getState().job?.id).toBe(1);
    expect(api.events).toHaveBeenCalledWith(1, 0, "tok");
  });

  it("keeps following the first run of a new graph when the graph gets its id", async () => {
    const { deps, api, sockets } = makeDeps([statusEvent(1, "queued")]);
    (api.jobs as ReturnType<typeof vi.fn>).mockResolvedValue([job({ id: 9, status: "queued" })]);
    const store = createRunsStore(deps);
    store.getState().setContext({ graphId: null, share: null, readOnly: false });
    // the editor saved the new graph (id 7) and started its run; then the drawer learns the id
    await store.getState().start({ graph: 7, version: 1, dataset: "harbour" });
    store.getState().setContext({ graphId: 7, share: null, readOnly: false });
    await flush();
    expect(store.getState().job?.id).toBe(9);
    expect(sockets[0].closed).toBe(false);
    expect(store.getState().runs.map((r) => r.id)).toEqual([9]);
  });

  it("forgets the open run when another graph opens", async () => {
    const { deps, sockets } = makeDeps([statusEvent(1, "queued")]);
    const store = createRunsStore(deps);
    store.getState().setContext({ graphId: 7, share: null, readOnly: false });
    await store.getState().start({ graph: 7, dataset: "harbour" });
    store.getState().setContext({ graphId: 8, share: null, readOnly: false });
    expect(sockets[0].closed).toBe(true);
    expect(store.getState().events).toEqual([]);
  });

  it("opening another run stops following the first", async () => {
    const { deps, api, sockets } = makeDeps([statusEvent(1, "running")], {
      job: vi.fn(async (id: number) => job({ id, status: id === 1 ? "running" : "succeeded" })),
    } as Partial<RunsDeps["api"]>);
    const store = createRunsStore(deps);
    await store.getState().openRun(1);
    expect(sockets[0].closed).toBe(false);
    await store.getState().openRun(2);
    expect(sockets[0].closed).toBe(true);
    expect(store.getState().job?.id).toBe(2);
    expect(api.job).toHaveBeenCalledTimes(2);
  });
});

describe("describeError", () => {
  it("names the refused field and each fit problem", () => {
    const fit = new ApiError(400, {
      error: "spirals does not fit this graph: spirals gives float32 [B, 2], but Input 'x' expects float32 [B, 64]",
      problems: ["spirals gives float32 [B, 2], but Input 'x' expects float32 [B, 64]", "the model outputs 10 classes, but spirals has 3"] as never,
    });
    expect(describeError(fit)).toBe(
      "spirals does not fit this graph: spirals gives float32 [B, 2], but Input 'x' expects float32 [B, 64]: the model outputs 10 classes, but spirals has 3",
    );
    const fields = new ApiError(400, { error: "some fields are not valid; see fields", fields: { non_field_errors: ["give either a dataset or an upload"] } });
    expect(describeError(fields)).toMatch(/give either a dataset or an upload/);
    expect(describeError(new ApiError(400, { error: "config.steps must be a whole number, got 'many'" }))).toBe("config.steps must be a whole number, got 'many'");
  });

  it("says when the queue is down", () => {
    expect(describeError(new ApiError(503, { error: "the run queue (Redis) could not be reached: refused" })))
      .toBe("The run queue is down: the run queue (Redis) could not be reached: refused. Try again in a moment.");
  });
});

describe("isTextRun", () => {
  it("knows text datasets and text uploads", () => {
    const datasets: Dataset[] = [
      { name: "harbour", kind: "text", description: "", tasks: ["next_token"], gives: "int64 [B, T] characters", options: {}, source: "", licence: "" },
      { name: "copy", kind: "tokens", description: "", tasks: ["next_token"], gives: "int64 [B, T] characters", options: {}, source: "", licence: "" },
    ];
    const uploads: Upload[] = [{
      id: 3, name: "tide.txt", kind: "text", task: "next_token", target: "", size: 720, summary: "", source: "", licence: "",
      created_at: "2025-01-01T00:00:00Z",
    }];
    expect(isTextRun(job({ dataset: "harbour" }), datasets, [])).toBe(true);
    expect(isTextRun(job({ dataset: "copy" }), datasets, [])).toBe(false);
    expect(isTextRun(job({ dataset: "upload", upload: 3 }), datasets, uploads)).toBe(true);
  });
});

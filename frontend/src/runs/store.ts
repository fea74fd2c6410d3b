// The runs of the open graph: the list of past runs, the open run and everything it
// reported (events merged by seq, and what is derived from them: metric series, attention
// snapshots, text samples), starting and cancelling. One store for the editor's one graph;
// `createRunsStore` makes others (tests).

import { useStore } from "zustand";
import { createStore, type StoreApi } from "zustand/vanilla";

import { api, ApiError } from "../api/client";
import type { Dataset, Job, Problem, RunKind, Upload } from "../api/types";
import { kindOf, type JobKind } from "./benchmark";
import { NO_MARKS, type CheckMarks } from "./check";
import { isEnded, mergeEvents, metricValue, obj, toRunJob, type RunEvent } from "./events";
import { deriveAll, deriveEvents, emptyDerived, type Derived } from "./series";
import { backfill, followRun, frameBatcher, type Connection, type Follower } from "./stream";

export type RunTab = "run" | "loss" | "attention" | "samples" | "next" | "dataset" | "results" | "costs" | "compare" | "sweep";

/** The body of POST /api/jobs (docs/runs.md "Lifecycle"). */
export interface StartBody {
  graph: number;
  version?: number;
  dataset?: string;
  upload?: number;
  dataset_options?: Record<string, unknown>;
  config?: Record<string, unknown>;
  published?: boolean;
  /** "benchmark" or "fpga" for those runs (the default is training) */
  kind?: JobKind;
  /** a benchmark or FPGA run: the id of a finished training run of the graph whose weights it uses */
  weights?: number;
}

export interface RunsState {
  graphId: number | null;
  share: string | null;
  readOnly: boolean;

  /** the graph's runs of both kinds, newest first */
  runs: Job[];
  runsLoading: boolean;
  runsError: string | null;

  datasets: Dataset[];
  uploads: Upload[];
  catalogError: string | null;
  /** the kinds of run and their settings' schemas (GET /api/run-kinds), asked for once */
  runKinds: RunKind[];

  /** the open run */
  job: Job | null;
  /** its events, by seq, no duplicates */
  events: RunEvent[];
  derived: Derived;
  eventsLoading: boolean;
  connection: Connection | "idle";
  streamError: string | null;

  starting: boolean;
  startError: string | null;
  /** what the server found wrong, by field (`config.lr`) */
  startProblems: Problem[];
  cancelling: boolean;
  cancelError: string | null;

  /** the drawer's kind of run: what the form starts, the list shows and the tabs are */
  mode: JobKind;
  /** the canvas's overlay of the open run's figures per node (a benchmark's node costs, an
   * FPGA run's errors), and at which batch size a benchmark's */
  costOverlay: boolean;
  costBatch: number | null;

  /** what the run form's live check says of the graph's nodes, for the canvas: the nodes the
   * run refuses (problems) and those it computes approximately (warnings) */
  checkMarks: CheckMarks;

  /** the drawer's tab and attention module; `openRequests` counts requests to open it */
  tab: RunTab;
  attentionPath: string | null;
  openRequests: number;

  setContext(context: { graphId: number | null; share: string | null; readOnly: boolean }): void;
  loadRuns(): Promise<void>;
  loadCatalog(): Promise<void>;
  openRun(id: number, known?: Job): Promise<void>;
  start(body: StartBody): Promise<Job | null>;
  cancel(): Promise<void>;
  closeRun(): void;
  setTab(tab: RunTab): void;
  /** switch the drawer to training or benchmark runs (opens the latest run of that kind) */
  setMode(mode: JobKind): void;
  setCostOverlay(on: boolean): void;
  setCostBatch(batch: number | null): void;
  setCheckMarks(marks: CheckMarks): void;
  setAttentionPath(path: string): void;
  /** open the drawer on the attention tab of a module (the canvas's mini heatmaps) */
  showAttention(path: string): void;
}

type Api = Pick<typeof api, "jobs" | "sharedJobs" | "job" | "startJob" | "cancelJob" | "events" | "datasets" | "uploads" | "runKinds">;

export interface RunsDeps {
  api: Api;
  follow: typeof followRun;
  /** frame scheduler for batching events (default: requestAnimationFrame) */
  schedule?: (callback: () => void) => () => void;
  /** how often a queued run is read again for its place in the queue, ms */
  pollMs?: number;
}

/** An API error in words, for the run panel. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return error instanceof Error ? error.message : String(error);
  const body = error.body;
  const text = body.error || `HTTP ${error.status}`;
  const details: string[] = [];
  if (Array.isArray(body.problems)) {
    for (const p of body.problems as unknown[]) {
      const message = typeof p === "string" ? p : String(obj(p).message ?? "");
      if (message && message !== text && !text.endsWith(message)) details.push(message);
    }
  }
  if (body.fields && typeof body.fields === "object") {
    for (const [field, messages] of Object.entries(body.fields)) {
      const list = Array.isArray(messages) ? messages.join(" ") : String(messages);
      details.push(field === "non_field_errors" ? list : `${field}: ${list}`);
    }
  }
  const full = details.length ? `${text}: ${details.join("; ")}` : text;
  switch (error.status) {
    case 0:
      return `The server could not be reached: ${full}`;
    case 401:
    case 403:
      return `Log in to do this: ${full}`;
    case 429:
      return `Queue quota reached: ${full}`;
    case 503:
      return `The run queue is down: ${full}. Try again in a moment.`;
    default:
      return full; // the API's sentences name the field as it is spelled (config.steps)
  }
}

/**
 * The run with what its events after its `last_seq` say (status, step, latest metrics);
 * older events are already in it.
 */
export function applyToJob(job: Job, events: readonly RunEvent[]): Job {
  let next: Job | null = null;
  for (const e of events) {
    if (e.seq <= (next ?? job).last_seq) continue;
    next = next ?? { ...job, metrics: { ...job.metrics } };
    next.last_seq = e.seq;
    if (e.type === "status") {
      next.status = e.status;
      next.total_steps = e.total || next.total_steps;
      next.attempts = e.attempts;
      next.device = e.device;
      next.worker = e.worker;
      next.error = e.error;
      next.step = e.step;
      if (e.status !== "queued") next.position = null;
    } else if (e.type === "metric") {
      next.step = e.step;
      next.metrics[e.name] = metricValue(e);
    }
  }
  return next ?? job;
}

/** Whether a run trains on text (it writes samples). */
export function isTextRun(job: Job | null, datasets: Dataset[], uploads: Upload[]): boolean {
  if (!job) return false;
  if (job.upload !== null) return uploads.find((u) => u.id === job.upload)?.kind === "text";
  return datasets.find((d) => d.name === job.dataset)?.kind === "text";
}

export function createRunsStore(deps: RunsDeps = { api, follow: followRun }): StoreApi<RunsState> {
  const pollMs = deps.pollMs ?? 4000;
  let follower: Follower | null = null;
  let batcher: ReturnType<typeof frameBatcher<RunEvent>> | null = null;
  let pollTimer: ReturnType<typeof setInterval> | undefined;
  let openToken = 0;

  const store = createStore<RunsState>()((set, get) => {
    /** Stops following the open run. */
    const detach = () => {
      openToken++;
      follower?.stop();
      follower = null;
      batcher?.cancel();
      batcher = null;
      if (pollTimer !== undefined) clearInterval(pollTimer);
      pollTimer = undefined;
    };

    /** A run object from the server: the open one and its row in the list. */
    const putJob = (job: Job, { fresh = false } = {}) => {
      const s = get();
      const patch: Partial<RunsState> = {};
      if (s.job && s.job.id === job.id) {
        // A REST answer older than the events already folded in must not undo them.
        if (!fresh && job.last_seq < s.derived.lastSeq) job = applyToJob(job, s.events);
        patch.job = job;
      }
      const index = s.runs.findIndex((r) => r.id === job.id);
      if (index >= 0) {
        patch.runs = s.runs.slice();
        patch.runs[index] = job;
      } else if (job.graph === s.graphId || s.share) {
        patch.runs = [job, ...s.runs];
      }
      set(patch);
    };

    const applyEvents = (token: number, items: RunEvent[]) => {
      if (token !== openToken) return;
      const s = get();
      const events = mergeEvents(s.events, items);
      if (events === s.events) return;
      const inOrder = items.every((e, i) => e.seq > (i ? items[i - 1].seq : s.derived.lastSeq));
      const derived = inOrder ? deriveEvents(s.derived, items) : deriveAll(events);
      const job = s.job ? applyToJob(s.job, items) : null;
      const patch: Partial<RunsState> = { events, derived, job };
      if (job && job !== s.job) {
        const index = s.runs.findIndex((r) => r.id === job.id);
        if (index >= 0) {
          patch.runs = s.runs.slice();
          patch.runs[index] = job;
        }
      }
      set(patch);
    };

    const refresh = async (token: number, id: number) => {
      try {
        const job = toRunJob(await deps.api.job(id, get().share ?? undefined));
        if (token === openToken) putJob(job);
      } catch {
        // the next poll or event says more
      }
    };

    const pollWhileQueued = (token: number, id: number) => {
      pollTimer = setInterval(() => {
        const job = get().job;
        if (token !== openToken || !job) return;
        if (job.status === "queued") void refresh(token, id);
        else if (isEnded(job.status)) {
          clearInterval(pollTimer);
          pollTimer = undefined;
        }
      }, pollMs);
    };

    return {
      graphId: null,
      share: null,
      readOnly: false,
      runs: [],
      runsLoading: false,
      runsError: null,
      datasets: [],
      uploads: [],
      catalogError: null,
      runKinds: [],
      job: null,
      events: [],
      derived: emptyDerived(),
      eventsLoading: false,
      connection: "idle",
      streamError: null,
      starting: false,
      startError: null,
      startProblems: [],
      cancelling: false,
      cancelError: null,
      mode: "train",
      costOverlay: false,
      costBatch: null,
      checkMarks: NO_MARKS,
      tab: "run",
      attentionPath: null,
      openRequests: 0,

      setContext({ graphId, share, readOnly }) {
        const s = get();
        if (s.graphId === graphId && s.share === share && s.readOnly === readOnly) return;
        // A new graph's first save (null → id) keeps the run it may be starting.
        const firstSave = s.graphId === null && graphId !== null && s.share === null && share === null;
        const sameGraph = firstSave || (s.graphId === graphId && s.share === share);
        if (!sameGraph) {
          detach();
          set({
            runs: [], runsError: null, job: null, events: [], derived: emptyDerived(),
            connection: "idle", streamError: null, startError: null, cancelError: null,
            attentionPath: null, eventsLoading: false,
          });
        }
        set({ graphId, share, readOnly });
        if (!sameGraph || firstSave) void get().loadRuns();
      },

      async loadRuns() {
        const { graphId, share } = get();
        if (share === null && graphId === null) {
          set({ runs: [], runsLoading: false });
          return;
        }
        set({ runsLoading: true, runsError: null });
        try {
          const lists: unknown[] = share
            ? [await deps.api.sharedJobs(share)]
            : await Promise.all([
              deps.api.jobs(graphId!),
              // A server that lists one kind at a time; one that knows no benchmarks refuses.
              deps.api.jobs(graphId!, "benchmark").catch(() => []),
            ]);
          if (get().graphId !== graphId || get().share !== share) return;
          const byId = new Map<number, Job>();
          for (const list of lists) for (const raw of Array.isArray(list) ? list : []) {
            const run = toRunJob(raw);
            if (!byId.has(run.id)) byId.set(run.id, run);
          }
          const runs = [...byId.values()].sort((a, b) => b.id - a.id);
          set({ runs, runsLoading: false });
          const latest = runs.find((r) => kindOf(r) === get().mode);
          if (!get().job && latest) void get().openRun(latest.id, latest);
        } catch (error) {
          set({ runsLoading: false, runsError: describeError(error) });
        }
      },

      async loadCatalog() {
        try {
          const datasets = await deps.api.datasets();
          set({ datasets, catalogError: null });
        } catch (error) {
          set({ catalogError: describeError(error) });
        }
        if (get().readOnly) return;
        if (!get().runKinds.length) {
          try {
            set({ runKinds: await deps.api.runKinds() });
          } catch (error) {
            set({ catalogError: describeError(error) });
          }
        }
        try {
          const uploads = await deps.api.uploads();
          set({ uploads });
        } catch {
          set({ uploads: [] }); // logged out, or none: built-in datasets still work
        }
      },

      async openRun(id, known) {
        detach();
        const token = openToken;
        const share = get().share ?? undefined;
        set({
          job: known ?? get().runs.find((r) => r.id === id) ?? null,
          events: [], derived: emptyDerived(), eventsLoading: true, connection: "idle",
          streamError: null, cancelError: null, attentionPath: null,
        });
        let job: Job;
        try {
          job = known ?? toRunJob(await deps.api.job(id, share));
        } catch (error) {
          if (token === openToken) set({ eventsLoading: false, streamError: describeError(error) });
          return;
        }
        if (token !== openToken) return;
        set({ job, mode: kindOf(job) });
        putJob(job, { fresh: true });
        const batch = frameBatcher<RunEvent>((items) => applyEvents(token, items), deps.schedule);
        batcher = batch;
        const fetchPage = (since: number) => deps.api.events(id, since, share);

        if (isEnded(job.status)) {
          try {
            await backfill(fetchPage, 0, (events) => batch.push(events));
            if (token === openToken) batch.flush();
          } catch (error) {
            if (token === openToken) set({ streamError: describeError(error) });
          }
          if (token === openToken) set({ eventsLoading: false, connection: "ended" });
          return;
        }

        follower = deps.follow({
          jobId: id,
          share,
          since: 0,
          fetchPage,
          onEvents: (events) => batch.push(events),
          onState: (state) => {
            if (token !== openToken) return;
            set({ eventsLoading: false, streamError: null });
            putJob(state);
          },
          onConnection: (connection) => {
            if (token === openToken) set({ connection });
          },
          onError: (message, fatal) => {
            if (token !== openToken) return;
            set({ streamError: message, ...(fatal ? { eventsLoading: false } : {}) });
          },
          onEnd: () => {
            if (token !== openToken) return;
            batch.flush();
            set({ eventsLoading: false, streamError: null });
            void refresh(token, id); // downloads, final metrics
          },
        });
        pollWhileQueued(token, id);
      },

      async start(body) {
        set({ starting: true, startError: null, startProblems: [] });
        try {
          const job = toRunJob(await deps.api.startJob(body));
          set({ starting: false });
          if (job.graph === get().graphId) {
            set({ runs: [job, ...get().runs.filter((r) => r.id !== job.id)] });
          }
          void get().openRun(job.id, job);
          if (kindOf(job) !== "train") set({ tab: "results" });
          return job;
        } catch (error) {
          const problems = error instanceof ApiError ? error.body.problems ?? [] : [];
          set({ starting: false, startError: describeError(error), startProblems: problems });
          return null;
        }
      },

      async cancel() {
        const job = get().job;
        if (!job || isEnded(job.status) || get().readOnly) return;
        set({ cancelling: true, cancelError: null });
        try {
          const after = toRunJob(await deps.api.cancelJob(job.id));
          putJob(after);
        } catch (error) {
          set({ cancelError: describeError(error) });
        } finally {
          set({ cancelling: false });
        }
      },

      closeRun() {
        detach();
        set({ job: null, events: [], derived: emptyDerived(), connection: "idle", streamError: null, eventsLoading: false });
      },

      setTab(tab) {
        set({ tab });
      },

      setMode(mode) {
        if (mode === get().mode) return;
        set({ mode, tab: "run" });
        const job = get().job;
        if (job && kindOf(job) === mode) return;
        const latest = get().runs.find((r) => kindOf(r) === mode);
        if (latest) void get().openRun(latest.id, latest);
        else get().closeRun();
      },

      setCostOverlay(on) {
        set({ costOverlay: on });
      },

      setCostBatch(batch) {
        set({ costBatch: batch });
      },

      setCheckMarks(marks) {
        if (marks !== get().checkMarks) set({ checkMarks: marks });
      },

      setAttentionPath(path) {
        set({ attentionPath: path });
      },

      showAttention(path) {
        set((s) => ({ tab: "attention", attentionPath: path, openRequests: s.openRequests + 1 }));
      },
    };
  });
  return store;
}

/** The editor's runs. */
export const runsStore = createRunsStore();

export function useRuns<T>(selector: (state: RunsState) => T): T {
  return useStore(runsStore, selector);
}

// A run's events and the run object, as the API's generated types say (api/types.ts), and
// the pure rules for holding them: merge by `seq`, find gaps. Everything that arrives
// (WebSocket messages, /metrics pages, the run object) goes through the normalisers here,
// so that a malformed or newer message cannot break the run code.

import type { AttentionEvent, Job, JobEvent, MetricEvent, NonFinite, RunStatus } from "../api/types";
import { toBenchmarkRow, toNodeCosts, toProgress } from "./benchmark";
import { isFpgaResult, toComparison, toStage, toSweepRow, toToolReport } from "./fpga";

export const ENDED: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

export function isEnded(status: string | null | undefined): boolean {
  return !!status && ENDED.has(status);
}

// Records over the generated unions: a value the API adds or drops fails to compile here.
const NONFINITE: Record<NonFinite, number> = { nan: NaN, inf: Infinity, "-inf": -Infinity };
const isNonFinite = (v: unknown): v is NonFinite => typeof v === "string" && v in NONFINITE;
const STATUSES: Record<RunStatus, true> = { queued: true, running: true, succeeded: true, failed: true, cancelled: true };
const isStatus = (v: unknown): v is RunStatus => typeof v === "string" && v in STATUSES;

/** A metric's value as a number: NaN, Infinity or -Infinity where the run's was (`nonfinite`). */
/**
 * A benchmark's or FPGA run's state in one line; `running` is what it does while it runs
 * ("Benchmarking on cpu", "Running on worker-1").
 */
export function runStatusText(job: Job, running: string): string {
  switch (job.status) {
    case "queued":
      if (job.cancel_requested) return "Cancelling…";
      return job.position ? `Queued · #${job.position} in queue` : "Queued";
    case "running":
      return job.cancel_requested ? "Cancelling…" : running;
    case "succeeded":
      return "Finished";
    case "failed":
      return `Failed: ${job.error || "no reason given"}`;
    case "cancelled":
      return job.error ? `Cancelled: ${job.error}` : "Cancelled";
  }
}

export function metricValue(e: MetricEvent): number {
  if (e.nonfinite !== undefined) return NONFINITE[e.nonfinite];
  return e.value ?? NaN;
}

/**
 * An event of a type this editor does not show (a newer server), or a malformed one. It is
 * kept so that sequence numbers stay contiguous.
 */
export type OtherEvent = Pick<JobEvent, "seq" | "step" | "time"> & { type: "other"; kind: string };

export type RunEvent = JobEvent | OtherEvent;

export const num = (v: unknown, fallback = 0): number =>
  typeof v === "number" && Number.isFinite(v) ? v : fallback;
const str = (v: unknown): string => (typeof v === "string" ? v : "");
export const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};


/** A run object from the API (any of its endpoints, or the WebSocket's `state`), normalised. */
export function toRunJob(raw: unknown): Job {
  const j = obj(raw);
  const metrics: Job["metrics"] = {}; // the finite values only: the others are in `nonfinite`
  for (const [k, v] of Object.entries(obj(j.metrics))) if (typeof v === "number") metrics[k] = v;
  const nonfinite: Job["nonfinite"] = {};
  for (const [k, v] of Object.entries(obj(j.nonfinite))) if (isNonFinite(v)) nonfinite[k] = v;
  const errors: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(j.download_errors))) errors[k] = str(v);
  const time = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    id: num(j.id),
    graph: num(j.graph),
    graph_name: str(j.graph_name),
    version: num(j.version),
    kind: (str(j.kind) || "train") as Job["kind"],
    weights_of: typeof j.weights_of === "number" ? j.weights_of : null,
    dataset: str(j.dataset),
    upload: typeof j.upload === "number" ? j.upload : null,
    dataset_options: obj(j.dataset_options),
    config: obj(j.config),
    queue: str(j.queue) as Job["queue"],
    time_limit: num(j.time_limit),
    status: isStatus(j.status) ? j.status : "queued",
    step: num(j.step),
    total_steps: num(j.total_steps, num(obj(j.config).steps)),
    position: typeof j.position === "number" ? j.position : null,
    waiting_reason: str(j.waiting_reason),
    priority: num(j.priority),
    retry_of: typeof j.retry_of === "number" ? j.retry_of : null,
    attempts: num(j.attempts),
    device: str(j.device),
    worker: str(j.worker),
    error: str(j.error),
    cancel_requested: j.cancel_requested === true,
    published: j.published === true,
    last_seq: num(j.last_seq),
    metrics,
    nonfinite,
    downloads: (Array.isArray(j.downloads) ? j.downloads.filter((d) => typeof d === "string") : []) as Job["downloads"],
    download_errors: errors,
    admin_actions: (Array.isArray(j.admin_actions) ? j.admin_actions : []).map((a) => {
      const action = obj(a);
      return { action: str(action.action) as Job["admin_actions"][number]["action"], detail: str(action.detail), at: str(action.at) };
    }),
    created_at: str(j.created_at),
    started_at: time(j.started_at),
    finished_at: time(j.finished_at),
    heartbeat_at: time(j.heartbeat_at),
    // A benchmark's or an FPGA run's result as the server typed it (null for a training run);
    // benchmark.ts and fpga.ts read it field by field.
    result: j.result && typeof j.result === "object" && (Array.isArray(obj(j.result).rows) || isFpgaResult(j.result))
      ? (j.result as Job["result"]) : null,
  };
}

/**
 * One event from the wire, or null when it has no sequence number (it is not an event). An
 * event of an unknown type, or one missing its members, becomes an `OtherEvent`.
 */
export function toRunEvent(raw: unknown): RunEvent | null {
  const e = obj(raw);
  const seq = e.seq;
  if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 1) return null;
  const base = { seq, step: num(e.step), time: num(e.time) };
  const other: OtherEvent = { ...base, type: "other", kind: str(e.type) };
  switch (e.type) {
    case "status": {
      const status = e.status;
      if (!isStatus(status)) return other;
      return {
        ...base, type: "status", status, total: num(e.total),
        attempts: num(e.attempts), device: str(e.device), worker: str(e.worker), error: str(e.error),
      };
    }
    case "metric":
      if (typeof e.name !== "string") return other;
      // A diverged run reports NaN or infinity: JSON carries null and the `nonfinite` flag
      // (metricValue gives the number).
      if (isNonFinite(e.nonfinite)) return { ...base, type: "metric", name: e.name, value: null, nonfinite: e.nonfinite };
      return { ...base, type: "metric", name: e.name, value: typeof e.value === "number" ? e.value : null };
    case "attention": {
      const heads = num(e.heads), rows = num(e.rows), cols = num(e.cols);
      if (typeof e.node !== "string" || typeof e.data !== "string" || !heads || !rows || !cols) return other;
      const scale = Array.isArray(e.scale)
        ? e.scale.map((h) => (Array.isArray(h) ? h.map((v) => num(v)) : []))
        : [];
      const attention: AttentionEvent = { ...base, type: "attention", node: e.node, heads, rows, cols, scale, data: e.data };
      // The example's tokens (newer runs only): kept when every one is a string.
      if (Array.isArray(e.tokens) && e.tokens.every((t) => typeof t === "string")) attention.tokens = e.tokens as string[];
      return attention;
    }
    case "sample":
      return { ...base, type: "sample", text: str(e.text) };
    case "progress": {
      const progress = toProgress(e);
      return progress ? { ...base, type: "progress", ...progress } : other;
    }
    case "benchmark": {
      const row = toBenchmarkRow(e);
      return row ? { ...base, type: "benchmark", ...row } : other;
    }
    case "node_costs": {
      const costs = toNodeCosts(e);
      return costs ? { ...base, type: "node_costs", ...costs } : other;
    }
    case "stage": {
      const stage = toStage(e);
      return stage ? { ...base, type: "stage", ...stage } : other;
    }
    case "comparison": {
      const comparison = toComparison(e);
      return comparison ? { ...base, type: "comparison", ...comparison } : other;
    }
    case "sweep": {
      const row = toSweepRow(e);
      return row ? { ...base, type: "sweep", ...row } : other;
    }
    case "tool": {
      const tool = toToolReport(e);
      return tool ? { ...base, type: "tool", ...tool } : other;
    }
    default:
      return other;
  }
}

export function toRunEvents(raw: unknown): RunEvent[] {
  if (!Array.isArray(raw)) return [];
  const out: RunEvent[] = [];
  for (const r of raw) {
    const e = toRunEvent(r);
    if (e) out.push(e);
  }
  return out;
}

/**
 * `existing` and `incoming` merged: ordered by `seq`, one event per `seq` (the one already
 * held wins: an event never changes). Returns `existing` itself when nothing is new, so a
 * store can skip an update.
 */
export function mergeEvents(existing: readonly RunEvent[], incoming: readonly RunEvent[]): RunEvent[] {
  if (incoming.length === 0) return existing as RunEvent[];
  const last = existing.length ? existing[existing.length - 1].seq : 0;
  // The common case: live events after everything held, in order.
  let appendable = true;
  let prev = last;
  for (const e of incoming) {
    if (e.seq <= prev) {
      appendable = false;
      break;
    }
    prev = e.seq;
  }
  if (appendable) return existing.concat(incoming);

  const bySeq = new Map<number, RunEvent>();
  for (const e of incoming) if (!bySeq.has(e.seq)) bySeq.set(e.seq, e);
  for (const e of existing) bySeq.set(e.seq, e); // held events win
  if (bySeq.size === existing.length) return existing as RunEvent[];
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export interface Gap {
  /** ask /metrics?since=`since` */
  since: number;
  /** up to and including this seq (the one before the live event) */
  until: number;
}

/** The events missing between the last one held (`held`) and a live one, if any. */
export function findGap(held: number, liveSeq: number): Gap | null {
  return liveSeq > held + 1 ? { since: held, until: liveSeq - 1 } : null;
}

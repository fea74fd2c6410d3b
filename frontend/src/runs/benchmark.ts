// Benchmark runs: what a benchmark reported (its progress, a row per backend × batch size,
// the time each graph node took, the machine), the rules the editor reads them by (which
// row is best, which are flagged, how two runs compare) and the heat of each node on the
// canvas. Pure functions; the drawer's components and the canvas read them.
//
// The run object's `kind` and a benchmark's `result` are typed here, in this one place,
// until the API's generated schema carries them: `kindOf` and `resultOf` are then the
// generated fields, normalised.

import type { components } from "../api/schema";
import type { Job } from "../api/types";

// The generated event types (api/types.ts gives them short names on the API's branch).
type ProgressEvent = components["schemas"]["ProgressEvent"];
type BenchmarkEvent = components["schemas"]["BenchmarkEvent"];
type NodeCostsEvent = components["schemas"]["NodeCostsEvent"];

export type JobKind = "train" | "benchmark" | "fpga";

const KINDS: ReadonlySet<string> = new Set<JobKind>(["train", "benchmark", "fpga"]);

type Measured<T> = Omit<T, "type" | "seq" | "step" | "time">;
/** One backend at one batch size: its figures, or why it could not run (`error`). */
export type BenchmarkRow = Measured<BenchmarkEvent>;
/** Where the forward time went, per graph node, for one backend at one batch size. */
export type NodeCosts = Measured<NodeCostsEvent>;
export type NodeCost = NodeCosts["nodes"][number];
export type Progress = Measured<ProgressEvent>;

/** The machine a benchmark ran on. */
export interface Machine {
  cpu: string;
  cores: number | null;
  gpu: string;
  gpu_memory: number | null;
  device: string;
  torch: string;
  onnxruntime: string;
  python: string;
}

/** A finished benchmark's stored result (the run object's `result`). */
export interface BenchmarkResult {
  machine: Machine | null;
  rows: BenchmarkRow[];
  node_costs: NodeCosts[];
  settings: Record<string, unknown>;
}

/** The backends in the order the tables list them; others follow, by name. */
export const BACKENDS = ["eager", "compile", "onnxruntime", "eager_bf16", "compile_bf16"];

// ---- reading the wire ----

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const text = (v: unknown): string => (typeof v === "string" ? v : "");
const count = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const maybe = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export function toProgress(e: Record<string, unknown>): Progress | null {
  if (typeof e.backend !== "string") return null;
  return { backend: e.backend, batch: count(e.batch), done: count(e.done), total: count(e.total) };
}

export function toBenchmarkRow(e: Record<string, unknown>): BenchmarkRow | null {
  if (typeof e.backend !== "string" || typeof e.batch !== "number") return null;
  return {
    backend: e.backend,
    batch: e.batch,
    error: text(e.error),
    latency_ms_median: maybe(e.latency_ms_median),
    latency_ms_p95: maybe(e.latency_ms_p95),
    samples_per_s: maybe(e.samples_per_s),
    tokens_per_s: maybe(e.tokens_per_s),
    peak_memory_bytes: maybe(e.peak_memory_bytes),
    flops_per_s: maybe(e.flops_per_s),
    max_abs_diff: maybe(e.max_abs_diff),
    within_tolerance: e.within_tolerance !== false,
  };
}

function toNodeCost(raw: unknown): NodeCost | null {
  if (!isObj(raw) || typeof raw.node !== "string") return null;
  return {
    node: raw.node,
    parent: typeof raw.parent === "string" ? raw.parent : null,
    type: text(raw.type),
    ms: count(raw.ms),
    share: count(raw.share),
    flops: count(raw.flops),
    flops_per_s: maybe(raw.flops_per_s),
  };
}

export function toNodeCosts(e: Record<string, unknown>): NodeCosts | null {
  if (typeof e.backend !== "string" || typeof e.batch !== "number" || !Array.isArray(e.nodes)) return null;
  const nodes = e.nodes.map(toNodeCost).filter((n): n is NodeCost => n !== null);
  return { backend: e.backend, batch: e.batch, method: text(e.method), nodes };
}

function toMachine(raw: unknown): Machine | null {
  if (!isObj(raw)) return null;
  return {
    cpu: text(raw.cpu), cores: maybe(raw.cores), gpu: text(raw.gpu), gpu_memory: maybe(raw.gpu_memory),
    device: text(raw.device), torch: text(raw.torch), onnxruntime: text(raw.onnxruntime), python: text(raw.python),
  };
}

const listOf = <T>(raw: unknown, read: (e: Record<string, unknown>) => T | null): T[] =>
  (Array.isArray(raw) ? raw : []).flatMap((e) => {
    const item = isObj(e) ? read(e) : null;
    return item ? [item] : [];
  });

export function toBenchmarkResult(raw: unknown): BenchmarkResult | null {
  if (!isObj(raw)) return null;
  return {
    machine: toMachine(raw.machine),
    rows: listOf(raw.rows, toBenchmarkRow),
    node_costs: listOf(raw.node_costs, toNodeCosts),
    settings: isObj(raw.settings) ? raw.settings : {},
  };
}

/** A run's kind ("train" where the server says none). */
export function kindOf(job: Pick<Job, "kind"> | null | undefined): JobKind {
  const kind = job?.kind as string | undefined;
  return kind && KINDS.has(kind) ? (kind as JobKind) : "train";
}

const results = new WeakMap<object, BenchmarkResult | null>();

/** A benchmark run's stored result; null while it runs, and for a training run. */
export function resultOf(job: Job | null | undefined): BenchmarkResult | null {
  if (!job) return null;
  if (!results.has(job)) results.set(job, toBenchmarkResult((job as { result?: unknown }).result));
  return results.get(job) ?? null;
}

// ---- what a run reported ----

export interface BenchmarkView {
  /** the latest progress event; null once the run ended */
  progress: Progress | null;
  /** a row per backend × batch (a later report replaces an earlier one), in table order */
  rows: BenchmarkRow[];
  nodeCosts: NodeCosts[];
  machine: Machine | null;
}

export const rowKey = (row: Pick<BenchmarkRow, "backend" | "batch">) => `${row.backend}@${row.batch}`;

function backendOrder(name: string): number {
  const i = BACKENDS.indexOf(name);
  return i < 0 ? BACKENDS.length : i;
}

/** Rows by batch size, then backend in the order of BACKENDS. */
export function tableOrder<T extends Pick<BenchmarkRow, "backend" | "batch">>(rows: T[]): T[] {
  return [...rows].sort((a, b) =>
    a.batch - b.batch || backendOrder(a.backend) - backendOrder(b.backend) || a.backend.localeCompare(b.backend));
}

function latestByKey<T extends Pick<BenchmarkRow, "backend" | "batch">>(items: T[]): T[] {
  const byKey = new Map<string, T>();
  for (const item of items) byKey.set(rowKey(item), item);
  return [...byKey.values()];
}

/**
 * What a benchmark run shows: its stored result (filled in as it runs) with what its events
 * said since (the drawer fills in live); for a backend × batch size both give, the event.
 * `events` are the run's, in seq order.
 */
export function benchmarkView(job: Job | null, events: readonly { type: string }[]): BenchmarkView {
  const result = resultOf(job);
  let progress: Progress | null = null;
  const rows: BenchmarkRow[] = [];
  const nodeCosts: NodeCosts[] = [];
  for (const e of events) {
    const fields = e as unknown as Record<string, unknown>;
    if (e.type === "progress") progress = toProgress(fields) ?? progress;
    else if (e.type === "benchmark") rows.push(...listOf([fields], toBenchmarkRow));
    else if (e.type === "node_costs") nodeCosts.push(...listOf([fields], toNodeCosts));
  }
  const ended = !!job && ["succeeded", "failed", "cancelled"].includes(job.status);
  // The result holds what was measured when the run object was read; events may say more.
  return {
    progress: ended ? null : progress,
    rows: tableOrder(latestByKey([...(result?.rows ?? []), ...rows])),
    nodeCosts: latestByKey([...(result?.node_costs ?? []), ...nodeCosts]),
    machine: result?.machine ?? null,
  };
}

/** "onnxruntime, batch 64: 40/100" */
export function progressText(p: Progress): string {
  return `${p.backend}, batch ${p.batch}: ${p.done}/${p.total}`;
}

// ---- ranking ----

/**
 * How a row stands: `error` (it did not run), `flagged` (its outputs differ from eager's
 * beyond the tolerance: not ranked), `best` (the fastest median of its batch size among
 * the ranked rows) or `ranked`.
 */
export type Standing = "best" | "ranked" | "flagged" | "error";

export function standings(rows: readonly BenchmarkRow[]): Map<string, Standing> {
  const out = new Map<string, Standing>();
  const best = new Map<number, BenchmarkRow>();
  for (const row of rows) {
    if (row.error || row.latency_ms_median === null) {
      out.set(rowKey(row), "error");
    } else if (!row.within_tolerance) {
      out.set(rowKey(row), "flagged");
    } else {
      out.set(rowKey(row), "ranked");
      const held = best.get(row.batch);
      if (!held || row.latency_ms_median < held.latency_ms_median!) best.set(row.batch, row);
    }
  }
  for (const row of best.values()) out.set(rowKey(row), "best");
  return out;
}

// ---- comparing two runs ----

/** b / a, when both are positive numbers. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !(a > 0) || !(b >= 0)) return null;
  return b / a;
}

export interface ComparedRow {
  backend: string;
  batch: number;
  a: BenchmarkRow | null;
  b: BenchmarkRow | null;
  /** B's median latency over A's */
  ratio: number | null;
}

/** Two runs' rows side by side, per backend × batch size (either may lack a row). */
export function compareRows(a: readonly BenchmarkRow[], b: readonly BenchmarkRow[]): ComparedRow[] {
  const pairs = new Map<string, ComparedRow>();
  const pair = (row: BenchmarkRow) => {
    const key = rowKey(row);
    if (!pairs.has(key)) pairs.set(key, { backend: row.backend, batch: row.batch, a: null, b: null, ratio: null });
    return pairs.get(key)!;
  };
  for (const row of a) pair(row).a = row;
  for (const row of b) pair(row).b = row;
  for (const p of pairs.values()) {
    const usable = (r: BenchmarkRow | null) => (r && !r.error ? r.latency_ms_median : null);
    p.ratio = ratio(usable(p.a), usable(p.b));
  }
  return tableOrder([...pairs.values()]);
}

export interface ComparedNode {
  node: string;
  type: string;
  a: NodeCost | null;
  b: NodeCost | null;
  /** B's time over A's */
  ratio: number | null;
}

/** Two runs' node costs side by side, costliest (in B, else A) first. */
export function compareNodes(a: NodeCosts | null, b: NodeCosts | null): ComparedNode[] {
  const pairs = new Map<string, ComparedNode>();
  const pair = (n: NodeCost) => {
    if (!pairs.has(n.node)) pairs.set(n.node, { node: n.node, type: n.type, a: null, b: null, ratio: null });
    return pairs.get(n.node)!;
  };
  for (const n of a?.nodes ?? []) pair(n).a = n;
  for (const n of b?.nodes ?? []) pair(n).b = n;
  for (const p of pairs.values()) p.ratio = ratio(p.a?.ms, p.b?.ms);
  const cost = (p: ComparedNode) => p.b?.ms ?? p.a?.ms ?? 0;
  return [...pairs.values()].sort((x, y) => cost(y) - cost(x) || x.node.localeCompare(y.node));
}

/** The node costs to show of a run: those at `batch`, else at its largest batch size. */
export function costsAtBatch(all: readonly NodeCosts[], batch: number | null): NodeCosts | null {
  if (!all.length) return null;
  const exact = all.find((c) => c.batch === batch);
  if (exact) return exact;
  return all.reduce((best, c) => (c.batch > best.batch ? c : best));
}

// ---- the canvas's heat ----

/**
 * A node's place in the graph from its id in node costs: "fc" is `fc` at the top;
 * "blocks.2.attn" is `attn` in copy 2 of the Repeat `blocks`; deeper Repeats nest the same
 * way. `scope` lists the Repeats (as the editor's scope does), `copies` the copy in each.
 */
export function parseCostNode(path: string): { scope: string[]; copies: number[]; id: string } {
  const parts = path.split(".");
  const scope: string[] = [];
  const copies: number[] = [];
  for (let i = 0; i + 2 < parts.length; i += 2) {
    scope.push(parts[i]);
    copies.push(Number(parts[i + 1]));
  }
  return { scope, copies, id: parts[parts.length - 1] };
}

export interface NodeHeat {
  /** of the whole forward time, 0 to 1 (inside a Repeat: all its copies together) */
  share: number;
  ms: number;
  /** the share against the costliest node at this scope, 0 to 1: the colour's strength */
  strength: number;
  /** inside a Repeat: each copy's row */
  copies: NodeCost[];
}

const sameScope = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((s, i) => s === b[i]);

/**
 * The heat of each node at `scope`: at the top, each node's row (a Repeat's is its summed
 * row); inside a Repeat, where the canvas draws one copy, each inner node with all its
 * copies summed.
 */
export function heatAt(costs: NodeCosts | null, scope: readonly string[]): Map<string, NodeHeat> {
  const heat = new Map<string, NodeHeat>();
  if (!costs) return heat;
  for (const n of costs.nodes) {
    const where = parseCostNode(n.node);
    if (!sameScope(where.scope, scope)) continue;
    const held = heat.get(where.id) ?? { share: 0, ms: 0, strength: 0, copies: [] };
    held.share += n.share;
    held.ms += n.ms;
    if (scope.length) held.copies.push(n);
    heat.set(where.id, held);
  }
  const top = Math.max(0, ...[...heat.values()].map((h) => h.share));
  for (const h of heat.values()) h.strength = top > 0 ? h.share / top : 0;
  return heat;
}

/** `fn` remembering its last answer: the same arguments (by identity) give the same object. */
export function memoLast<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let last: { args: A; value: R } | null = null;
  return (...args: A) => {
    if (last && last.args.length === args.length && last.args.every((a, i) => a === args[i])) return last.value;
    const value = fn(...args);
    last = { args, value };
    return value;
  };
}

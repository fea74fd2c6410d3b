// FPGA runs: what one reported (its stages as they go, the fixed-point emulation against the
// float model overall and per node, the sweep over bit widths, the tool reports, and on
// failure the tools' last log lines), read from its stored result and its events, and the
// canvas's per-node error overlay. Pure functions; the drawer and the canvas read them.
//
// Every string here (a stage's words, a tool's error, the log tail) is tool output: the
// components show it as text, never as HTML.

import type { components } from "../api/schema";
import type { Job, Problem } from "../api/types";

type S = components["schemas"];
type Wire = S["FpgaResult"];

export type Comparison = NonNullable<Wire["comparison"]>;
export type NodeError = Comparison["nodes"][number];
export type SweepRow = Wire["sweep"][number];
export type ToolReport = Wire["tools"][number];

/** A stage as it began (`seconds` null) or ended (how long it took). */
export interface Stage {
  stage: string;
  text: string;
  seconds: number | null;
}

/** A finished (or running) FPGA run's stored result, normalised. */
export interface FpgaResult {
  settings: Record<string, unknown>;
  warnings: Problem[];
  stages: Record<string, number>;
  comparison: Comparison | null;
  sweep: SweepRow[];
  tools: ToolReport[];
  log_tail: string[];
}

// ---- reading the wire ----

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const text = (v: unknown, max = 2000): string => (typeof v === "string" ? v.slice(0, max) : "");
const maybe = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const count = (v: unknown): number => maybe(v) ?? 0;
const listOf = <T>(raw: unknown, read: (e: Record<string, unknown>) => T | null): T[] =>
  (Array.isArray(raw) ? raw : []).flatMap((e) => {
    const item = isObj(e) ? read(e) : null;
    return item ? [item] : [];
  });

export function toStage(e: Record<string, unknown>): Stage | null {
  if (typeof e.stage !== "string") return null;
  return { stage: text(e.stage, 100), text: text(e.text, 500), seconds: maybe(e.seconds) };
}

function toNodeError(e: Record<string, unknown>): NodeError | null {
  if (typeof e.node !== "string") return null;
  return { node: text(e.node, 200), max_error: count(e.max_error), mean_error: count(e.mean_error) };
}

export function toComparison(e: Record<string, unknown>): Comparison | null {
  if (typeof e.precision !== "string") return null;
  return {
    precision: text(e.precision, 100),
    samples: count(e.samples),
    inputs: text(e.inputs, 500),
    agreement: maybe(e.agreement),
    max_error: maybe(e.max_error),
    mean_error: maybe(e.mean_error),
    nodes: listOf(e.nodes, toNodeError),
  };
}

export function toSweepRow(e: Record<string, unknown>): SweepRow | null {
  if (typeof e.bits !== "number") return null;
  return {
    bits: e.bits,
    precision: text(e.precision, 100),
    agreement: maybe(e.agreement),
    max_error: maybe(e.max_error),
    mean_error: maybe(e.mean_error),
    seconds: count(e.seconds),
  };
}

export function toToolReport(e: Record<string, unknown>): ToolReport | null {
  if (typeof e.tool !== "string") return null;
  return { tool: text(e.tool, 100), ran: e.ran === true, error: text(e.error), figures: isObj(e.figures) ? e.figures : {} };
}

function toProblem(e: Record<string, unknown>): Problem | null {
  if (typeof e.message !== "string") return null;
  return { message: text(e.message, 1000), node: typeof e.node === "string" ? e.node : null, field: typeof e.field === "string" ? e.field : null };
}

/** Whether a run object's `result` is an FPGA run's. */
export function isFpgaResult(raw: unknown): boolean {
  return isObj(raw) && raw.kind === "fpga";
}

export function toFpgaResult(raw: unknown): FpgaResult | null {
  if (!isObj(raw) || raw.kind !== "fpga") return null;
  const stages: Record<string, number> = {};
  if (isObj(raw.stages)) for (const [k, v] of Object.entries(raw.stages)) if (maybe(v) !== null) stages[k] = v as number;
  return {
    settings: isObj(raw.settings) ? raw.settings : {},
    warnings: listOf(raw.warnings, toProblem),
    stages,
    comparison: isObj(raw.comparison) ? toComparison(raw.comparison) : null,
    sweep: listOf(raw.sweep, toSweepRow),
    tools: listOf(raw.tools, toToolReport),
    log_tail: (Array.isArray(raw.log_tail) ? raw.log_tail : []).slice(-50).map((line) => text(line, 1000)),
  };
}

const results = new WeakMap<object, FpgaResult | null>();

/** An FPGA run's stored result; null for another kind, and before it starts. */
export function fpgaResultOf(job: Job | null | undefined): FpgaResult | null {
  if (!job) return null;
  if (!results.has(job)) results.set(job, toFpgaResult((job as { result?: unknown }).result));
  return results.get(job) ?? null;
}

// ---- what a run reported ----

export interface FpgaView {
  /** every stage event, in order */
  stages: Stage[];
  /** the words of the stage under way (the last one begun), while the run is active */
  current: string | null;
  comparison: Comparison | null;
  /** by bit width, narrowest first (a later report of a width replaces an earlier one) */
  sweep: SweepRow[];
  /** one per tool, the latest report */
  tools: ToolReport[];
  warnings: Problem[];
  logTail: string[];
}

export const NO_FPGA: FpgaView = { stages: [], current: null, comparison: null, sweep: [], tools: [], warnings: [], logTail: [] };

/**
 * What an FPGA run shows: its stored result with what its events said since (for the
 * comparison, a sweep width or a tool both give, the event). `events` in seq order.
 */
export function fpgaView(job: Job | null, events: readonly { type: string }[]): FpgaView {
  const result = fpgaResultOf(job);
  const stages: Stage[] = [];
  let comparison = result?.comparison ?? null;
  const sweep = new Map<number, SweepRow>((result?.sweep ?? []).map((r) => [r.bits, r]));
  const tools = new Map<string, ToolReport>((result?.tools ?? []).map((t) => [t.tool, t]));
  for (const e of events) {
    const fields = e as unknown as Record<string, unknown>;
    if (e.type === "stage") {
      const stage = toStage(fields);
      if (stage) stages.push(stage);
    } else if (e.type === "comparison") {
      comparison = toComparison(fields) ?? comparison;
    } else if (e.type === "sweep") {
      const row = toSweepRow(fields);
      if (row) sweep.set(row.bits, row);
    } else if (e.type === "tool") {
      const tool = toToolReport(fields);
      if (tool) tools.set(tool.tool, tool);
    }
  }
  // Stored stage times stand in for the events of a run whose events are not read yet.
  if (!stages.length && result) {
    for (const [stage, seconds] of Object.entries(result.stages)) stages.push({ stage, text: stage, seconds });
  }
  const active = !!job && (job.status === "queued" || job.status === "running");
  const last = stages[stages.length - 1];
  return {
    stages,
    current: active && last && last.seconds === null ? last.text : null,
    comparison,
    sweep: [...sweep.values()].sort((a, b) => a.bits - b.bits),
    tools: [...tools.values()],
    warnings: result?.warnings ?? [],
    logTail: result?.log_tail ?? [],
  };
}

// ---- words and numbers ----

/** 0.994 → "99.4%", 1 → "100%"; null → "–". */
export function agreementText(v: number | null | undefined): string {
  if (v == null) return "–";
  return v >= 1 ? "100%" : `${(v * 100).toFixed(1)}%`;
}

/** An error figure: "0", "0.48", "0.0077", "3.1e-5". */
export function errorText(v: number | null | undefined): string {
  if (v == null) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e4 ? String(Number(v.toPrecision(2))) : v.toExponential(1);
}

export const TOOL_NAMES: Record<string, string> = { verilator: "Verilator", yosys: "Yosys", vitis_hls: "Vitis HLS" };

const num = (v: unknown): number | null => maybe(v);
const field = (o: unknown, key: string): unknown => (isObj(o) ? o[key] : undefined);

/** What a tool found, in one line; or why it did not run. */
export function toolText(t: ToolReport): string {
  if (!t.ran) return `did not run: ${t.error || "no reason given"}`;
  const f = t.figures;
  if (t.tool === "verilator") {
    if (f.bit_exact === true) return "the Verilog is bit-exact with the emulation";
    const diff = num(f.max_diff);
    return `the Verilog differs from the emulation${diff !== null ? ` (max difference ${errorText(diff)})` : ""}`;
  }
  if (t.tool === "yosys") {
    const parts = [["LUTs", f.luts], ["flip-flops", f.ffs], ["pipeline depth", f.pipeline_depth]]
      .filter(([, v]) => num(v) !== null).map(([k, v]) => `${k} ${v as number}`);
    return parts.length ? parts.join(" · ") : "ran, with no figures";
  }
  if (t.tool === "vitis_hls") {
    const parts: string[] = [];
    const worst = num(field(f.latency_cycles, "worst"));
    const ns = num(field(f.latency_ns, "worst"));
    if (worst !== null) parts.push(`latency ${worst} cycles${ns !== null ? ` (${Number(ns.toPrecision(3))} ns)` : ""}`);
    const ii = num(field(f.interval, "max"));
    if (ii !== null) parts.push(`II ${ii}`);
    if (isObj(f.resources)) {
      const used = Object.entries(f.resources).filter(([, v]) => num(v) !== null).map(([k, v]) => `${k} ${v as number}`);
      if (used.length) parts.push(used.join(", "));
    }
    const csim = field(f.csim, "passed");
    if (csim === true) parts.push("C simulation passed");
    else if (csim === false) parts.push("C simulation failed");
    return parts.length ? parts.join(" · ") : "ran, with no figures";
  }
  const shown = Object.entries(f).filter(([, v]) => typeof v === "number" || typeof v === "boolean" || typeof v === "string");
  return shown.length ? shown.map(([k, v]) => `${k} ${String(v)}`).join(" · ") : "ran";
}

// ---- the canvas's error overlay ----

export interface NodeErrorHeat {
  max_error: number;
  mean_error: number;
  /** the max error against the largest of any node, 0 to 1: the colour's strength */
  strength: number;
}

/**
 * Each node's error at `scope`: the comparison maps top-level nodes only (the blocks inside a
 * Repeat take no figure yet), so inside a Repeat there is none. A node without a figure is
 * not in the map.
 */
export function errorHeatAt(comparison: Comparison | null, scope: readonly string[]): Map<string, NodeErrorHeat> {
  const heat = new Map<string, NodeErrorHeat>();
  if (!comparison || scope.length) return heat;
  for (const n of comparison.nodes) heat.set(n.node, { max_error: n.max_error, mean_error: n.mean_error, strength: 0 });
  const top = Math.max(0, ...[...heat.values()].map((h) => h.max_error));
  for (const h of heat.values()) h.strength = top > 0 ? h.max_error / top : 0;
  return heat;
}

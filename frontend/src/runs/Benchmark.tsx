// Benchmark runs in the drawer: the form that starts one (its settings from the served
// schema, optionally the weights of a finished training run; the FPGA form is the same form), the run's status and progress
// line, the results table that grows row by row as backends finish, and the machine it ran on.

import "./runs.css";

import { useId, useMemo, useState } from "react";

import type { Job } from "../api/types";
import type { ObjectSchema } from "../editor/SchemaField";
import { useEditor } from "../store/editor";
import { bytes, compact } from "../ui/format";
import {
  kindOf, progressText, rowKey, standings, type BenchmarkRow, type Machine, type Standing,
} from "./benchmark";
import { fieldProblems, startGate, type CheckBody } from "./check";
import { buildConfig, type Setting } from "./config";
import { useBenchmark } from "./costs";
import { isEnded, runStatusText } from "./events";
import { useLiveCheck } from "./liveCheck";
import { Settings } from "./Settings";
import { runsStore, useRuns } from "./store";

// ---- numbers ----

/** 0.153 → "0.153 ms", 12.34 → "12.3 ms". */
export function ms(v: number | null | undefined): string {
  if (v == null) return "–";
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toPrecision(3)} ms`;
}

/** Per second, with its unit: "1.20 GFLOP/s", "512 samples/s". */
export function perSecond(v: number | null | undefined, unit: string): string {
  if (v == null) return "–";
  const text = compact(v);
  return /[kMGT]$/.test(text) ? `${text}${unit}/s` : `${text} ${unit}/s`;
}

/** The largest output difference: "0", "3.1e-7". */
export function diff(v: number | null | undefined): string {
  if (v == null) return "–";
  return v === 0 ? "0" : v.toExponential(1);
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(share >= 0.1 ? 0 : 1)}%`;
}

// ---- the form ----

export interface BenchmarkFormProps {
  ensureSaved(): Promise<{ graphId: number; version: number } | null>;
}

/** Finished training runs of the graph whose weights a benchmark can use. */
export function weightsRuns(runs: readonly Job[]): Job[] {
  return runs.filter((r) => kindOf(r) === "train" && r.status === "succeeded" && r.downloads.includes("weights"));
}

/** How the benchmark and FPGA forms differ: the words and the test ids' prefix. */
const KIND_FORMS = {
  benchmark: {
    prefix: "bench", noun: "benchmark", start: "Start benchmark", label: "Start a benchmark",
    fresh: "without one, the benchmark uses freshly initialised weights (the timing is the same, the outputs differ)",
  },
  fpga: {
    prefix: "fpga", noun: "FPGA run", start: "Start FPGA run", label: "Start an FPGA run",
    fresh: "without one, the FPGA run uses seeded random weights and compares on seeded random inputs; with one, on the validation split of its dataset",
  },
} as const;

export type FormKind = keyof typeof KIND_FORMS;

/** Node types that build no module, so no setting names them. */
const NO_MODULE = new Set(["Input", "Output", "Init"]);

/** The top-level nodes of the graph a setting may name (not its Input, Output nor Init). */
function useNodeIds(): string[] {
  const nodes = useEditor((s) => s.doc.nodes);
  return useMemo(() => nodes.filter((n) => !NO_MODULE.has(n.type)).map((n) => n.id), [nodes]);
}

/**
 * The form that starts a run of a kind other than training (a benchmark, an FPGA run): its
 * settings from the served schema, optionally the weights of a finished training run, the
 * live check (its problems on their fields and, for the canvas, on their nodes) and Start.
 */
export function KindForm({ kind, ensureSaved }: BenchmarkFormProps & { kind: FormKind }) {
  const words = KIND_FORMS[kind];
  const schema = useRuns((s) => s.runKinds.find((k) => k.kind === kind)?.settings_schema) as ObjectSchema | undefined;
  const kindsKnown = useRuns((s) => s.runKinds.length > 0);
  const runs = useRuns((s) => s.runs);
  const starting = useRuns((s) => s.starting);
  const startError = useRuns((s) => s.startError);
  const startProblems = useRuns((s) => s.startProblems);
  const settings: Setting[] = useMemo(() => Object.entries(schema?.properties ?? {}), [schema]);
  const trained = useMemo(() => weightsRuns(runs), [runs]);
  const nodeIds = useNodeIds();
  const [values, setValues] = useState<Record<string, unknown>>({});
  const [invalid, setInvalid] = useState<Record<string, string>>({});
  const [weights, setWeights] = useState<number | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);
  const weightsId = useId();
  const graphDoc = useEditor((s) => (s.ready && !s.readOnly ? s.doc : null));

  const chosenWeights = weights !== null && trained.some((r) => r.id === weights) ? weights : null;
  const checkBody = (): CheckBody | null => (graphDoc && schema
    ? { document: graphDoc, kind, config: buildConfig(values), ...(chosenWeights !== null ? { weights: chosenWeights } : {}) }
    : null);
  const { check, checker } = useLiveCheck(checkBody());
  const gate = startGate(check);
  const problems = useMemo(() => fieldProblems(check, startProblems), [check, startProblems]);
  const warnings = check.status === "done" ? check.result.warnings ?? [] : [];

  const setFieldError = (name: string, error: string | null) => setInvalid((e) => {
    if (error) return e[name] === error ? e : { ...e, [name]: error };
    if (!(name in e)) return e;
    const { [name]: _, ...rest } = e;
    return rest;
  });

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (Object.keys(invalid).length) return;
    const now = checkBody();
    if (now && startGate(await checker.now(now)).blocked) return;
    setSaving(true);
    setSaveError(null);
    let saved: { graphId: number; version: number } | null;
    try {
      saved = await ensureSaved();
    } catch (error) {
      setSaveError(`The graph could not be saved: ${(error as Error).message}`);
      return;
    } finally {
      setSaving(false);
    }
    if (!saved) return;
    await runsStore.getState().start({
      graph: saved.graphId,
      version: saved.version,
      kind,
      config: buildConfig(values),
      ...(chosenWeights !== null ? { weights: chosenWeights } : {}),
    });
  };

  if (!schema) {
    return (
      <p className="runs-empty" data-testid={`${words.prefix}-unavailable`}>
        {kindsKnown ? `This server does not run ${kind === "fpga" ? "FPGA runs" : "benchmarks"}.` : `Loading the ${words.noun} settings…`}
      </p>
    );
  }
  const busy = starting || saving;
  return (
    <form className="runs-form" onSubmit={submit} aria-label={words.label}>
      <Settings
        settings={settings}
        values={values}
        problems={problems}
        nodeIds={nodeIds}
        onChange={(name, value) => setValues((v) => ({ ...v, [name]: value }))}
        onInvalid={setFieldError}
      />
      <div className="runs-field runs-field-wide">
        <label htmlFor={weightsId} title={`A finished training run of this graph; ${words.fresh}`}>
          Weights
        </label>
        <select
          id={weightsId}
          data-testid={`${words.prefix}-weights`}
          value={chosenWeights ?? ""}
          onChange={(e) => setWeights(e.target.value ? Number(e.target.value) : null)}
        >
          <option value="">{kind === "fpga" ? "seeded random" : "freshly initialised"}</option>
          {trained.map((r) => (
            <option key={r.id} value={r.id}>weights of run #{r.id} (v{r.version}, {r.dataset})</option>
          ))}
        </select>
      </div>
      <div className="runs-actions">
        <button
          type="submit"
          className="primary"
          data-testid={`${words.prefix}-start`}
          disabled={busy || gate.blocked}
          aria-busy={busy || undefined}
          title={gate.reason ? `This ${words.noun} cannot start: ${gate.reason}` : undefined}
        >
          {words.start}
        </button>
        {saving && <span className="runs-muted">Saving the graph…</span>}
        {starting && <span className="runs-muted">Starting…</span>}
      </div>
      {gate.reason && <p className="runs-error" data-testid={`${words.prefix}-check`}>This {words.noun} cannot start: {gate.reason}</p>}
      {warnings.length > 0 && (
        <ul className="runs-warn runs-check-warnings" data-testid={`${words.prefix}-warnings`}>
          {warnings.map((w, i) => <li key={i}>{w.node ? `${w.node}: ` : ""}{w.message}</li>)}
        </ul>
      )}
      {saveError && <p className="runs-error" role="alert">{saveError}</p>}
      {startError && !saveError && <p className="runs-error" role="alert" data-testid="run-error">{startError}</p>}
    </form>
  );
}

/** The benchmark's form. */
export function BenchmarkForm({ ensureSaved }: BenchmarkFormProps) {
  return <KindForm kind="benchmark" ensureSaved={ensureSaved} />;
}

// ---- the run ----

/** A benchmark run's state in one line. */
export function benchmarkStatusText(job: Job): string {
  return runStatusText(job, `Benchmarking${job.device ? ` on ${job.device}` : ""}`);
}

export function BenchmarkStatus({ job }: { job: Job }) {
  const { progress } = useBenchmark();
  const streamError = useRuns((s) => s.streamError);
  const fraction = progress && progress.total > 0 ? Math.min(1, progress.done / progress.total) : 0;
  return (
    <div className="runs-status-block">
      <div className={`runs-status runs-status-${job.status}`} data-testid="run-status" data-status={job.status} role="status">
        <span className="runs-dot" aria-hidden="true" />
        <span className="runs-status-run">Benchmark #{job.id}</span>
        <span className="runs-status-text">{benchmarkStatusText(job)}</span>
      </div>
      {progress && !isEnded(job.status) && (
        <div className="bench-progress" data-testid="bench-progress">
          <div
            className="runs-progress runs-progress-running"
            role="progressbar"
            aria-label="Benchmark progress"
            aria-valuemin={0}
            aria-valuemax={progress.total}
            aria-valuenow={progress.done}
            aria-valuetext={progressText(progress)}
          >
            <div className="runs-progress-fill" style={{ width: `${100 * fraction}%` }} />
          </div>
          <span className="runs-num">{progressText(progress)}</span>
        </div>
      )}
      {streamError && <p className="runs-warn">{streamError}</p>}
    </div>
  );
}

const STANDING_TITLE: Record<Standing, string> = {
  best: "The fastest median at this batch size",
  ranked: "",
  flagged: "Its outputs differ from eager's beyond the tolerance: not ranked",
  error: "",
};

/** The results: a row per backend × batch size; an error row gives its reason; a row whose
 * outputs differ from eager's is red and not ranked; the best ranked one per batch is marked. */
export function ResultsTable({ rows }: { rows: readonly BenchmarkRow[] }) {
  const standing = useMemo(() => standings(rows), [rows]);
  const tokens = rows.some((r) => r.tokens_per_s != null);
  return (
    <table className="bench-table" data-testid="bench-results">
      <thead>
        <tr>
          <th>Backend</th>
          <th className="num">Batch</th>
          <th className="num">Median</th>
          <th className="num">p95</th>
          <th className="num">Samples/s</th>
          {tokens && <th className="num">Tokens/s</th>}
          <th className="num">Peak memory</th>
          <th className="num">FLOP/s</th>
          <th className="num" title="The largest output difference to eager on the same inputs">Max diff</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => {
          const key = rowKey(row);
          const s = standing.get(key)!;
          return (
            <tr key={key} className={`bench-${s}`} data-row={key} data-standing={s} title={STANDING_TITLE[s] || undefined}>
              <td>{row.backend}{s === "best" && <span className="bench-star" aria-label="fastest"> ★</span>}</td>
              <td className="num">{row.batch}</td>
              {s === "error" ? (
                <td className="bench-reason" colSpan={tokens ? 7 : 6}>cannot run: {row.error || "no figures"}</td>
              ) : (
                <>
                  <td className="num">{ms(row.latency_ms_median)}</td>
                  <td className="num">{ms(row.latency_ms_p95)}</td>
                  <td className="num">{compact(row.samples_per_s)}</td>
                  {tokens && <td className="num">{compact(row.tokens_per_s)}</td>}
                  <td className="num">{bytes(row.peak_memory_bytes)}</td>
                  <td className="num">{perSecond(row.flops_per_s, "FLOP")}</td>
                  <td className="num">
                    {diff(row.max_abs_diff)}
                    {s === "flagged" && <span className="bench-flag"> differs</span>}
                  </td>
                </>
              )}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** "AMD EPYC 9654 · 16 cores · NVIDIA H200 (139 GiB) · torch 2.5.1 · onnxruntime 1.20.1 · Python 3.11.9" */
export function machineText(m: Machine): string {
  const parts = [m.cpu || "CPU unknown"];
  if (m.cores) parts.push(`${m.cores} cores`);
  if (m.gpu) parts.push(m.gpu_memory ? `${m.gpu} (${bytes(m.gpu_memory)})` : m.gpu);
  if (m.device) parts.push(`ran on ${m.device}`);
  if (m.torch) parts.push(`torch ${m.torch}`);
  if (m.onnxruntime) parts.push(`onnxruntime ${m.onnxruntime}`);
  if (m.python) parts.push(`Python ${m.python}`);
  return parts.join(" · ");
}

export function MachineInfo({ machine }: { machine: Machine | null }) {
  if (!machine) return null;
  return <p className="bench-machine runs-muted" data-testid="bench-machine">Machine: {machineText(machine)}</p>;
}

/** The "Results" tab: the open benchmark's progress, table and machine. */
export function BenchmarkResults() {
  const job = useRuns((s) => s.job);
  const view = useBenchmark();
  const loading = useRuns((s) => s.eventsLoading);
  if (!job || kindOf(job) !== "benchmark") {
    return <p className="runs-empty">Start or open a benchmark to see its results.</p>;
  }
  return (
    <div className="bench-results">
      <BenchmarkStatus job={job} />
      {view.rows.length ? <ResultsTable rows={view.rows} /> : (
        <p className="runs-empty">{isEnded(job.status) && !loading ? "This benchmark reported no results." : "The first results come when a backend finishes its first batch size."}</p>
      )}
      <MachineInfo machine={view.machine} />
    </div>
  );
}

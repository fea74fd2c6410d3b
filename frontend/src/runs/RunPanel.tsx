// Starting a run (dataset, the main settings, the rest under "Advanced"), the open run's
// status, progress, cancel and downloads, and the graph's past runs.

import "./runs.css";

import { useEffect, useId, useMemo, useRef, useState } from "react";

import { api } from "../api/client";
import type { Job } from "../api/types";
import type { ObjectSchema } from "../editor/SchemaField";
import { useEditor } from "../store/editor";
import { kindOf, type JobKind } from "./benchmark";
import { BenchmarkStatus, KindForm } from "./Benchmark";
import { cpuNotice, fieldProblems, startGate, type CheckBody } from "./check";
import { buildConfig, buildDatasetOptions, initialValues, splitSettings } from "./config";
import { isEnded } from "./events";
import { FpgaStatus } from "./Fpga";
import { useLiveCheck } from "./liveCheck";
import { PublishRun } from "./PublishRun";
import { OverfittingWarning, RunProgress } from "./RunProgress";
import { Settings } from "./Settings";
import { runsStore, useRuns, type StartBody } from "./store";
import { UploadForm } from "./UploadForm";
import { waitingText } from "./waiting";

export interface RunPanelProps {
  graphId: number | null;
  readOnly: boolean;
  /** the dataset the graph's starter learns, when known: the default choice */
  starterDataset?: string;
  /** saves the graph first if needed; null when the user cancelled */
  ensureSaved(): Promise<{ graphId: number; version: number } | null>;
}

const DOWNLOADS: { format: string; needs: Job["downloads"][number]; label: string; title: string }[] = [
  { format: "weights", needs: "weights", label: "Weights", title: "The trained weights (.safetensors)" },
  { format: "onnx", needs: "onnx", label: "ONNX", title: "The trained model as ONNX (.onnx)" },
  { format: "pytorch", needs: "pytorch", label: "PyTorch", title: "The model as a standalone PyTorch file (.py)" },
  { format: "pytorch_weights", needs: "pytorch", label: "PyTorch weights", title: "The state dict for the PyTorch file (.pt)" },
  { format: "hls_project", needs: "hls_project", label: "HLS project", title: "The hls4ml project with its testbench data, for Vitis HLS (.tar.gz)" },
  { format: "verilog", needs: "verilog", label: "Verilog", title: "The Verilog da4ml generated (.tar.gz)" },
];

function formatValue(v: number | null | undefined, digits = 4): string {
  if (v == null || !Number.isFinite(v)) return "–";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(digits);
}

function ago(iso: string | null): string {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function duration(job: Job): string {
  if (!job.started_at) return "";
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const s = Math.max(0, Math.round((end - Date.parse(job.started_at)) / 1000));
  if (!Number.isFinite(s)) return "";
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** The run's state in one line: what a user checks at a glance. */
export function statusText(job: Job): string {
  const steps = `step ${job.step} / ${job.total_steps}`;
  switch (job.status) {
    case "queued":
      if (job.cancel_requested) return "Cancelling…";
      return waitingText(job) ? `Queued · ${waitingText(job)}` : "Queued";
    case "running":
      if (job.cancel_requested) return `Cancelling… · ${steps}`;
      return `Running${job.device ? ` on ${job.device}` : ""} · ${steps}`;
    case "succeeded": {
      const parts = ["Succeeded", steps];
      if (job.metrics.val_loss != null) parts.push(`val loss ${formatValue(job.metrics.val_loss)}`);
      if (job.metrics.val_accuracy != null) parts.push(`accuracy ${(job.metrics.val_accuracy * 100).toFixed(1)}%`);
      const took = duration(job);
      if (took) parts.push(took);
      return parts.join(" · ");
    }
    case "failed":
      return `Failed: ${job.error || "no reason given"}`;
    case "cancelled":
      return job.error ? `Cancelled: ${job.error}` : `Cancelled at step ${job.step}`;
  }
}

export function RunStatus({ job }: { job: Job }) {
  const connection = useRuns((s) => s.connection);
  const streamError = useRuns((s) => s.streamError);
  const total = Math.max(job.total_steps, 1);
  const step = Math.min(job.step, total);
  const active = !isEnded(job.status);
  return (
    <div className="runs-status-block">
      <div
        className={`runs-status runs-status-${job.status}`}
        data-testid="run-status"
        data-status={job.status}
        role="status"
      >
        <span className="runs-dot" aria-hidden="true" />
        <span className="runs-status-run">Run #{job.id}</span>
        <span className="runs-status-text">{statusText(job)}</span>
      </div>
      <div
        className={`runs-progress runs-progress-${job.status}`}
        data-testid="run-progress"
        role="progressbar"
        aria-label="Training progress"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={step}
        aria-valuetext={`step ${step} of ${total}`}
      >
        <div className="runs-progress-fill" style={{ width: `${(100 * step) / total}%` }} />
      </div>
      <RunProgress job={job} />
      <OverfittingWarning />
      {job.status === "queued" && job.error && <p className="runs-warn">{job.error}</p>}
      {active && connection === "reconnecting" && <p className="runs-muted">Connection lost; reconnecting…</p>}
      {streamError && <p className="runs-warn">{streamError}</p>}
    </div>
  );
}

function Downloads({ job, share }: { job: Job; share: string | null }) {
  const available = DOWNLOADS.filter((d) => job.downloads.includes(d.needs));
  const errors = Object.entries(job.download_errors);
  if (!available.length && !errors.length) return null;
  return (
    <div className="runs-downloads">
      <span className="runs-muted">Download</span>
      {available.map((d) => (
        <a key={d.format} className="button" href={api.jobDownloadUrl(job.id, d.format, share ?? undefined)} title={d.title} download>
          {d.label}
        </a>
      ))}
      {errors.map(([format, why]) => (
        <span key={format} className="runs-warn" title={why}>{format} could not be made: {why}</span>
      ))}
    </div>
  );
}

/** "1, 8, 64 · eager, compile": what a benchmark measured; "ap_fixed<16,6> · sweep 8, 12":
 * what an FPGA run compared. */
function benchmarkSummary(job: Job): string {
  const list = (v: unknown) => (Array.isArray(v) ? v.join(", ") : "");
  if (kindOf(job) === "fpga") {
    const precision = typeof job.config.precision === "string" ? job.config.precision : "ap_fixed<16,6>";
    const sweep = list(job.config.sweep_bits);
    return [precision, sweep ? `sweep ${sweep}` : ""].filter(Boolean).join(" · ");
  }
  return [list(job.config.batch_sizes), list(job.config.backends)].filter(Boolean).join(" · ");
}

const PAST_WORDS = {
  train: { heading: "Runs of this graph", none: "No runs yet." },
  benchmark: { heading: "Benchmarks of this graph", none: "No benchmarks yet." },
  fpga: { heading: "FPGA runs of this graph", none: "No FPGA runs yet." },
};

function PastRuns() {
  const mode = useRuns((s) => s.mode);
  const all = useRuns((s) => s.runs);
  const runs = useMemo(() => all.filter((r) => kindOf(r) === mode), [all, mode]);
  const benchmarks = mode !== "train";
  const loading = useRuns((s) => s.runsLoading);
  const error = useRuns((s) => s.runsError);
  const openId = useRuns((s) => s.job?.id ?? null);
  const readOnly = useRuns((s) => s.readOnly);
  return (
    <section className="runs-past" aria-label={readOnly ? "Published runs" : "Past runs"}>
      <h3 className="runs-h">{readOnly ? "Published runs" : PAST_WORDS[mode].heading}</h3>
      {error && <p className="runs-error">{error}</p>}
      {!runs.length && !loading && !error && (
        <p className="runs-empty">{readOnly ? "No runs of this model are published." : PAST_WORDS[mode].none}</p>
      )}
      <ul className="runs-list">
        {runs.map((r) => (
          <li key={r.id}>
            <button
              type="button"
              className="runs-list-item"
              aria-current={r.id === openId ? "true" : undefined}
              onClick={() => void runsStore.getState().openRun(r.id)}
              title={r.error || undefined}
            >
              <span className={`runs-dot runs-status-${r.status}`} aria-hidden="true" />
              <span className="runs-num">#{r.id}</span>
              <span className="runs-muted">v{r.version}</span>
              {benchmarks ? (
                <span className="runs-list-dataset runs-list-bench" title={benchmarkSummary(r)}>{benchmarkSummary(r)}</span>
              ) : (
                <span className="runs-list-dataset">{r.dataset === "upload" ? "upload" : r.dataset}</span>
              )}
              <span>{r.status}</span>
              {!benchmarks && <span className="runs-num runs-muted">{r.step}/{r.total_steps}</span>}
              {!benchmarks && <span className="runs-num">{r.metrics.val_loss != null ? `val ${formatValue(r.metrics.val_loss, 3)}` : ""}</span>}
              <span className="runs-muted runs-list-when">{ago(r.created_at)}</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function StartForm({ starterDataset, ensureSaved }: Pick<RunPanelProps, "starterDataset" | "ensureSaved">) {
  const datasets = useRuns((s) => s.datasets);
  const uploads = useRuns((s) => s.uploads);
  const catalogError = useRuns((s) => s.catalogError);
  const runs = useRuns((s) => s.runs);
  const starting = useRuns((s) => s.starting);
  const startError = useRuns((s) => s.startError);
  const startProblems = useRuns((s) => s.startProblems);
  const schema = useRuns((s) => s.runKinds.find((k) => k.kind === "train")?.settings_schema) as ObjectSchema | undefined;
  const { basic, advanced: advancedSettings } = useMemo(() => splitSettings(schema), [schema]);
  const [values, setValues] = useState<Record<string, unknown>>(() => initialValues(schema));
  const [invalid, setInvalid] = useState<Record<string, string>>({});
  const [dataset, setDataset] = useState<string>(starterDataset ?? "");
  const [options, setOptions] = useState<Record<string, string>>({});
  const [published, setPublished] = useState(false);
  const [advanced, setAdvanced] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saving, setSaving] = useState(false);
  const touched = useRef(false);
  const errorRef = useRef<HTMLParagraphElement>(null);
  const datasetId = useId();
  // The graph as it is in the editor now, saved or not: what the live check looks at.
  const graphDoc = useEditor((s) => (s.ready && !s.readOnly ? s.doc : null));

  useEffect(() => {
    if (startError) errorRef.current?.scrollIntoView?.({ block: "nearest" });
  }, [startError]);

  // The default dataset: the starter's, else the last run's, else the first.
  useEffect(() => {
    if (touched.current) return;
    const names = datasets.map((d) => d.name);
    const last = runs[0];
    const lastValue = last ? (last.upload !== null ? `upload:${last.upload}` : last.dataset) : "";
    const pick =
      starterDataset && (names.includes(starterDataset) || !names.length) ? starterDataset
        : lastValue && (names.includes(lastValue) || uploads.some((u) => `upload:${u.id}` === lastValue)) ? lastValue
          : names[0] ?? "";
    if (pick && pick !== dataset) setDataset(pick);
  }, [datasets, uploads, runs, starterDataset, dataset]);

  const entry = datasets.find((d) => d.name === dataset);
  const upload = dataset.startsWith("upload:") ? uploads.find((u) => `upload:${u.id}` === dataset) : undefined;
  const optionNames = useMemo(() => Object.keys(entry?.options ?? {}), [entry]);
  // The schema may come after the form: then the basic settings start at its defaults.
  const prefilled = useRef(schema !== undefined);
  useEffect(() => {
    if (schema === undefined || prefilled.current) return;
    prefilled.current = true;
    setValues((v) => ({ ...initialValues(schema), ...v }));
  }, [schema]);
  // What the run would be: checked live, and again when Start is pressed.
  const checkBody = (): CheckBody | null => {
    if (!graphDoc || !dataset) return null;
    const { options: datasetOptions, errors: optionErrors } = buildDatasetOptions(optionNames, options);
    if (Object.keys(optionErrors).length) return null;
    return {
      document: graphDoc,
      config: buildConfig(values),
      ...(upload ? { upload: upload.id } : { dataset, ...(Object.keys(datasetOptions).length ? { dataset_options: datasetOptions } : {}) }),
    };
  };
  const { check, checker } = useLiveCheck(checkBody());
  const gate = startGate(check);
  const notice = cpuNotice(check);
  // The server's problems, by setting: each marks its field (the live check's first).
  const serverProblems = useMemo(() => fieldProblems(check, startProblems), [startProblems, check]);
  const isAdvanced = (names: string[]) => advancedSettings.some(([name]) => names.includes(name));
  useEffect(() => {
    if (advancedSettings.some(([name]) => name in serverProblems)) setAdvanced(true);
  }, [serverProblems, advancedSettings]);

  const setValue = (name: string, value: unknown) => setValues((v) => ({ ...v, [name]: value }));
  const setFieldError = (name: string, error: string | null) => setInvalid((e) => {
    if (error) return e[name] === error ? e : { ...e, [name]: error };
    if (!(name in e)) return e;
    const { [name]: _, ...rest } = e;
    return rest;
  });
  const settingsProps = { values, problems: serverProblems, onChange: setValue, onInvalid: setFieldError };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const config = buildConfig(values);
    const { options: datasetOptions, errors: optionErrors } = buildDatasetOptions(optionNames, options);
    const all = { ...optionErrors };
    if (!dataset) all.dataset = "Pick a dataset";
    setErrors(all);
    if (Object.keys(all).length || Object.keys(invalid).length) {
      if (isAdvanced(Object.keys(invalid))) setAdvanced(true);
      return;
    }
    // Nothing is saved for a run that cannot start.
    const now = checkBody();
    if (now && startGate(await checker.now(now)).blocked) return;
    setSaving(true);
    let saved: { graphId: number; version: number } | null;
    try {
      saved = await ensureSaved();
    } catch (error) {
      setErrors({ save: `The graph could not be saved: ${(error as Error).message}` });
      return;
    } finally {
      setSaving(false);
    }
    if (!saved) return;
    const body: StartBody = {
      graph: saved.graphId,
      version: saved.version,
      config,
      ...(published ? { published: true } : {}),
      ...(upload ? { upload: upload.id } : { dataset, ...(Object.keys(datasetOptions).length ? { dataset_options: datasetOptions } : {}) }),
    };
    await runsStore.getState().start(body);
  };

  const busy = starting || saving;
  const general = Object.entries(errors).filter(([k]) => k === "save" || k === "dataset").map(([, v]) => v);

  return (
    <form className="runs-form" onSubmit={submit} aria-label="Start a run">
      <div className="runs-field runs-field-wide">
        <label htmlFor={datasetId}>Dataset</label>
        <select
          id={datasetId}
          data-testid="run-dataset"
          value={dataset}
          aria-invalid={!!errors.dataset || undefined}
          onChange={(e) => {
            touched.current = true;
            setDataset(e.target.value);
            setOptions({});
          }}
        >
          {!dataset && <option value="">Choose…</option>}
          {dataset && !entry && !upload && <option value={dataset}>{dataset}</option>}
          <optgroup label="Built-in">
            {datasets.map((d) => (
              <option key={d.name} value={d.name}>{d.name} · {d.description}</option>
            ))}
          </optgroup>
          {uploads.length > 0 && (
            <optgroup label="Your uploads">
              {uploads.map((u) => (
                <option key={u.id} value={`upload:${u.id}`}>{u.name} · {u.summary}</option>
              ))}
            </optgroup>
          )}
        </select>
        <span className="runs-field-hint">{entry?.gives ?? upload?.summary ?? catalogError ?? ""}</span>
        {(upload ?? entry) && (
          <span className="runs-field-hint" data-testid="dataset-provenance">
            Source: {(upload ?? entry)!.source || "not declared"} · Licence: {(upload ?? entry)!.licence || "not declared"}
          </span>
        )}
      </div>
      <UploadForm onUploaded={(made) => {
        touched.current = true;
        setDataset(`upload:${made.id}`);
        setOptions({});
      }} />
      {optionNames.map((name) => (
        <div className="runs-field" key={name}>
          <label htmlFor={`${datasetId}-${name}`} title={entry!.options[name]}>{name}</label>
          <input
            id={`${datasetId}-${name}`}
            type="text"
            inputMode="numeric"
            value={options[name] ?? ""}
            placeholder="default"
            title={entry!.options[name]}
            aria-invalid={!!errors[name] || undefined}
            onChange={(e) => setOptions((o) => ({ ...o, [name]: e.target.value }))}
          />
          {errors[name] && <span className="runs-field-error">{errors[name]}</span>}
        </div>
      ))}
      {!schema && catalogError && <p className="runs-error">The run settings could not be loaded: {catalogError}</p>}
      <Settings settings={basic} {...settingsProps} />
      <details className="runs-advanced" open={advanced} onToggle={(e) => setAdvanced((e.target as HTMLDetailsElement).open)}>
        <summary>Advanced</summary>
        <Settings settings={advancedSettings} {...settingsProps} />
        <div className="runs-flags">
          <label className="runs-check" title="People with a share link of this graph may watch the run">
            <input type="checkbox" checked={published} onChange={(e) => setPublished(e.target.checked)} />
            Publish to share links
          </label>
        </div>
      </details>
      <div className="runs-actions">
        <button
          type="submit"
          className="primary"
          data-testid="run-start"
          disabled={busy || gate.blocked}
          aria-busy={busy || undefined}
          aria-describedby={gate.blocked ? `${datasetId}-check` : undefined}
          title={gate.reason ? `This run cannot start: ${gate.reason}` : undefined}
        >
          Start run
        </button>
        {saving && <span className="runs-muted">Saving the graph…</span>}
        {starting && <span className="runs-muted">Starting…</span>}
      </div>
      {gate.reason && (
        <p id={`${datasetId}-check`} className="runs-error" data-testid="run-check">
          This run cannot start: {gate.reason}
        </p>
      )}
      {notice && <p className="runs-warn" data-testid="run-cpu-notice">{notice}</p>}
      {general.map((message) => (
        <p key={message} className="runs-error" role="alert">{message}</p>
      ))}
      {startError && !errors.save && (
        <p ref={errorRef} className="runs-error" role="alert" data-testid="run-error">{startError}</p>
      )}
    </form>
  );
}

/** Train | Benchmark | FPGA: which kind of run the form starts and the list shows (FPGA where
 * the server offers it). */
function ModeSwitch() {
  const mode = useRuns((s) => s.mode);
  const fpga = useRuns((s) => s.runKinds.some((k) => k.kind === "fpga"));
  const modes: [JobKind, string][] = [["train", "Train"], ["benchmark", "Benchmark"], ...(fpga || mode === "fpga" ? [["fpga", "FPGA"] as [JobKind, string]] : [])];
  return (
    <div className="runs-mode" role="radiogroup" aria-label="Kind of run">
      {modes.map(([value, label]) => (
        <button
          key={value}
          type="button"
          role="radio"
          aria-checked={mode === value}
          data-testid={`run-mode-${value}`}
          onClick={() => runsStore.getState().setMode(value)}
        >
          {label}
        </button>
      ))}
    </div>
  );
}

/** The "Run" tab: start a run (not in a read-only view), the open run, past runs. */
export function RunPanel({ graphId, readOnly, starterDataset, ensureSaved }: RunPanelProps) {
  const job = useRuns((s) => s.job);
  const share = useRuns((s) => s.share);
  const cancelling = useRuns((s) => s.cancelling);
  const cancelError = useRuns((s) => s.cancelError);
  const mode = useRuns((s) => s.mode);
  const canStart = !readOnly;
  const kind = kindOf(job);
  const benchmark = kind !== "train";
  // A fresh form for another graph, but not when a new graph gets its id on its first save
  // (that happens while its first run starts).
  const form = useRef({ graphId, key: 0 });
  if (form.current.graphId !== graphId) {
    if (form.current.graphId !== null) form.current.key++;
    form.current.graphId = graphId;
  }
  return (
    <div className={`runs-panel${canStart ? "" : " runs-panel-readonly"}`}>
      {canStart && (
        <section className="runs-panel-start" aria-label="Start a run">
          <ModeSwitch />
          {mode !== "train"
            ? <KindForm key={`${mode}-${form.current.key}`} kind={mode} ensureSaved={ensureSaved} />
            : <StartForm key={form.current.key} starterDataset={starterDataset} ensureSaved={ensureSaved} />}
        </section>
      )}
      <section className="runs-panel-side">
        {job ? (
          <div className="runs-open">
            {kind === "fpga" ? <FpgaStatus job={job} /> : benchmark ? <BenchmarkStatus job={job} /> : <RunStatus job={job} />}
            {!readOnly && isEnded(job.status) && !benchmark && <PublishRun run={job} />}
            <div className="runs-open-meta runs-muted">
              v{job.version} · {benchmark ? benchmarkSummary(job) : job.dataset === "upload" ? `upload ${job.upload}` : job.dataset}
              {job.worker ? ` · ${job.worker}` : ""}
              {job.attempts > 1 ? ` · attempt ${job.attempts}` : ""}
            </div>
            {!readOnly && !isEnded(job.status) && (
              <div className="runs-actions">
                <button
                  type="button"
                  className="danger"
                  disabled={cancelling || job.cancel_requested}
                  onClick={() => void runsStore.getState().cancel()}
                >
                  Cancel run
                </button>
              </div>
            )}
            {cancelError && <p className="runs-error" role="alert">{cancelError}</p>}
            <Downloads job={job} share={share} />
          </div>
        ) : (
          <p className="runs-empty">
            {readOnly ? "Pick a published run to see its charts." : mode === "benchmark" ? "Start a benchmark to time this graph on each backend."
              : mode === "fpga" ? "Start an FPGA run to emulate this graph in fixed point." : "Start a run to train this graph."}
          </p>
        )}
        <PastRuns />
      </section>
    </div>
  );
}

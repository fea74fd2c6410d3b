// FPGA runs in the drawer: the run's status with the stage under way, the comparison of the
// fixed-point emulation with the float model (overall, then per node: a row selects its
// node on the canvas, whose overlay shows the same errors), the tool reports, the stage
// times, and on failure the tools' last log lines; the sweep over bit widths as a table and
// a small plot. Everything the tools wrote is shown as text (React escapes it), never HTML.

import "uplot/dist/uPlot.min.css";
import "./runs.css";

import { useEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";

import type { Job } from "../api/types";
import { kindOf } from "./benchmark";
import { selectCostNode, useFpga } from "./costs";
import { isEnded, runStatusText } from "./events";
import { agreementText, errorText, TOOL_NAMES, toolText, type Comparison, type SweepRow } from "./fpga";
import { canDraw } from "./LossChart";
import { runsStore, useRuns } from "./store";
import { cssVar, useThemeVersion } from "./theme";

/** An FPGA run's state in one line. */
export function fpgaStatusText(job: Job): string {
  return runStatusText(job, `Running${job.worker ? ` on ${job.worker}` : ""}`);
}

/** The run's status line and, while it runs, the stage under way. */
export function FpgaStatus({ job }: { job: Job }) {
  const { current } = useFpga();
  const streamError = useRuns((s) => s.streamError);
  const total = Math.max(job.total_steps, 1);
  const step = Math.min(job.step, total);
  return (
    <div className="runs-status-block">
      <div className={`runs-status runs-status-${job.status}`} data-testid="run-status" data-status={job.status} role="status">
        <span className="runs-dot" aria-hidden="true" />
        <span className="runs-status-run">FPGA run #{job.id}</span>
        <span className="runs-status-text">{fpgaStatusText(job)}</span>
      </div>
      {!isEnded(job.status) && (
        <div className="bench-progress" data-testid="fpga-progress">
          <div
            className="runs-progress runs-progress-running"
            role="progressbar"
            aria-label="FPGA run progress"
            aria-valuemin={0}
            aria-valuemax={total}
            aria-valuenow={step}
            aria-valuetext={current ?? `${step} of ${total} steps`}
          >
            <div className="runs-progress-fill" style={{ width: `${(100 * step) / total}%` }} />
          </div>
          {current && <span className="runs-muted" data-testid="fpga-stage">{current}…</span>}
        </div>
      )}
      {streamError && <p className="runs-warn">{streamError}</p>}
    </div>
  );
}

/** The comparison in figures: agreement, errors, the precision and the inputs. */
export function ComparisonSummary({ comparison }: { comparison: Comparison }) {
  return (
    <dl className="fpga-figures" data-testid="fpga-comparison">
      <div>
        <dt title="How often the fixed-point model picks the same top class as the float model">Agreement</dt>
        <dd data-testid="fpga-agreement">{agreementText(comparison.agreement)}</dd>
      </div>
      <div>
        <dt title="The largest absolute difference of an output value">Max error</dt>
        <dd data-testid="fpga-max-error">{errorText(comparison.max_error)}</dd>
      </div>
      <div>
        <dt>Mean error</dt>
        <dd>{errorText(comparison.mean_error)}</dd>
      </div>
      <div>
        <dt>Precision</dt>
        <dd>{comparison.precision}</dd>
      </div>
      <p className="runs-muted fpga-inputs">On {comparison.inputs || `${comparison.samples} inputs`}.</p>
    </dl>
  );
}

/** Per node, largest error first; a row selects its node on the canvas. */
export function NodeErrorTable({ comparison, onPick }: { comparison: Comparison; onPick(node: string): void }) {
  const nodes = useMemo(() => [...comparison.nodes].sort((a, b) => b.max_error - a.max_error || a.node.localeCompare(b.node)), [comparison]);
  if (!nodes.length) return <p className="runs-muted">No per-node figures (the layers could not be matched to the graph's nodes).</p>;
  return (
    <table className="bench-table" data-testid="fpga-nodes">
      <thead>
        <tr>
          <th>Node</th>
          <th className="num">Max error</th>
          <th className="num">Mean error</th>
        </tr>
      </thead>
      <tbody>
        {nodes.map((n) => (
          <tr key={n.node} data-node={n.node} className="bench-pick" onClick={() => onPick(n.node)}>
            <td>
              <button type="button" className="link" title="Select this node on the canvas" onClick={(e) => {
                e.stopPropagation();
                onPick(n.node);
              }}>
                {n.node}
              </button>
            </td>
            <td className="num">{errorText(n.max_error)}</td>
            <td className="num">{errorText(n.mean_error)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The "Results" tab of an FPGA run. */
export function FpgaResults() {
  const job = useRuns((s) => s.job);
  const view = useFpga();
  const overlay = useRuns((s) => s.costOverlay);
  const loading = useRuns((s) => s.eventsLoading);
  const [missing, setMissing] = useState<string | null>(null);
  if (!job || kindOf(job) !== "fpga") return <p className="runs-empty">Start or open an FPGA run to see its results.</p>;
  const pick = (node: string) => setMissing(selectCostNode(node) ? null : node);
  const ended = isEnded(job.status);
  return (
    <div className="bench-results fpga-results">
      <FpgaStatus job={job} />
      {view.warnings.length > 0 && (
        <ul className="runs-warn fpga-warnings" data-testid="fpga-result-warnings">
          {view.warnings.map((w, i) => <li key={i}>{w.node ? `${w.node}: ` : ""}{w.message}</li>)}
        </ul>
      )}
      {view.comparison ? (
        <section aria-label="Comparison">
          <h3 className="runs-h">Fixed point against float</h3>
          <ComparisonSummary comparison={view.comparison} />
          <div className="bench-tools">
            <span className="runs-h">Per node</span>
            {view.comparison.nodes.length > 0 && (
              <label className="runs-check">
                <input type="checkbox" data-testid="fpga-overlay" checked={overlay} onChange={(e) => runsStore.getState().setCostOverlay(e.target.checked)} />
                Show on the canvas
              </label>
            )}
          </div>
          {missing && <p className="runs-warn">The graph has no node “{missing}” now: it was edited after this run.</p>}
          <NodeErrorTable comparison={view.comparison} onPick={pick} />
        </section>
      ) : (
        <p className="runs-empty">{ended && !loading ? "This run made no comparison." : "The comparison comes once the project is compiled and emulated."}</p>
      )}
      {view.tools.length > 0 && (
        <section aria-label="Tools">
          <h3 className="runs-h">Tools</h3>
          <ul className="fpga-tools" data-testid="fpga-tools">
            {view.tools.map((t) => (
              <li key={t.tool} data-tool={t.tool} data-ran={t.ran ? "true" : "false"} className={t.ran ? "" : "runs-muted"}>
                <strong>{TOOL_NAMES[t.tool] ?? t.tool}</strong>: {toolText(t)}
              </li>
            ))}
          </ul>
        </section>
      )}
      {view.stages.some((s) => s.seconds !== null) && (
        <details className="fpga-stages">
          <summary>Stage times</summary>
          <ul data-testid="fpga-stages">
            {view.stages.filter((s) => s.seconds !== null).map((s, i) => (
              <li key={i}><span>{s.text}</span> <span className="runs-num runs-muted">{s.seconds!.toFixed(1)} s</span></li>
            ))}
          </ul>
        </details>
      )}
      {job.status === "failed" && (
        <section aria-label="Failure" data-testid="fpga-failure">
          <p className="runs-error">{job.error || "The run failed without a reason."}</p>
          {view.logTail.length > 0 && (
            <>
              <h3 className="runs-h">The tools' last lines</h3>
              <pre className="fpga-log" data-testid="fpga-log">{view.logTail.join("\n")}</pre>
            </>
          )}
        </section>
      )}
    </div>
  );
}

/** The plot's columns: bit widths, agreement (0 to 1) and max error. */
export function sweepChartData(rows: readonly SweepRow[]): uPlot.AlignedData {
  return [rows.map((r) => r.bits), rows.map((r) => r.agreement), rows.map((r) => r.max_error)] as uPlot.AlignedData;
}

/** Agreement (left, 0 to 100%) and max error (right) against the total bit width. */
export function SweepChart({ rows }: { rows: readonly SweepRow[] }) {
  const plotRef = useRef<HTMLDivElement>(null);
  const theme = useThemeVersion();
  const data = useMemo(() => sweepChartData(rows), [rows]);
  useEffect(() => {
    const plot = plotRef.current;
    if (!plot || !canDraw() || rows.length < 1) return;
    const fg = cssVar(plot, "--muted", "#888");
    const line = cssVar(plot, "--line", "rgba(128,128,128,0.25)");
    const acc = cssVar(plot, "--run-acc", "#2a9d8f");
    const err = cssVar(plot, "--run-val", "#c0568f");
    const font = "11px system-ui, sans-serif";
    const axis = { stroke: fg, font, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1, size: 4 } };
    const opts: uPlot.Options = {
      width: Math.max(plot.clientWidth, 160),
      height: 180,
      scales: { x: { time: false }, acc: { auto: false, range: [0, 1] }, err: { auto: true } },
      axes: [
        { ...axis, size: 26, values: (_u, vals) => vals.map((v) => `${v}b`) },
        { ...axis, scale: "acc", size: 40, values: (_u, vals) => vals.map((v) => `${Math.round(v * 100)}%`) },
        { ...axis, scale: "err", side: 1, size: 44, grid: { show: false }, values: (_u, vals) => vals.map((v) => errorText(v)) },
      ],
      series: [
        { label: "bits", value: (_u, v) => (v == null ? "–" : String(v)) },
        { label: "agreement", scale: "acc", stroke: acc, width: 1.6, points: { show: true, size: 5, fill: acc }, value: (_u, v) => agreementText(v) },
        { label: "max error", scale: "err", stroke: err, width: 1.4, dash: [5, 3], points: { show: true, size: 4, fill: err }, value: (_u, v) => errorText(v) },
      ],
      legend: { live: true },
    };
    let chart: uPlot;
    try {
      chart = new uPlot(opts, data, plot);
    } catch {
      plot.replaceChildren();
      return;
    }
    const observer = typeof ResizeObserver === "function"
      ? new ResizeObserver(() => chart.setSize({ width: Math.max(Math.floor(plot.clientWidth), 160), height: 180 })) : null;
    observer?.observe(plot);
    return () => {
      observer?.disconnect();
      chart.destroy();
    };
  }, [data, rows.length, theme]);
  return <div ref={plotRef} className="fpga-sweep-plot" data-testid="fpga-sweep-plot" />;
}

/** The "Sweep" tab: a row per bit width, and the plot. */
export function FpgaSweep() {
  const job = useRuns((s) => s.job);
  const { sweep } = useFpga();
  if (!job || kindOf(job) !== "fpga") return <p className="runs-empty">Start or open an FPGA run to see its sweep.</p>;
  if (!sweep.length) {
    const asked = Array.isArray(job.config.sweep_bits) && job.config.sweep_bits.length > 0;
    return (
      <p className="runs-empty">
        {!asked ? "This run compared one precision: give it sweep bit widths (e.g. 8, 10, 12, 16) to compare several."
          : isEnded(job.status) ? "The sweep reported nothing." : "The sweep's rows come once the main comparison is done."}
      </p>
    );
  }
  return (
    <div className="fpga-sweep">
      <table className="bench-table" data-testid="fpga-sweep">
        <thead>
          <tr>
            <th className="num">Bits</th>
            <th>Precision</th>
            <th className="num">Agreement</th>
            <th className="num">Max error</th>
            <th className="num">Mean error</th>
            <th className="num">Time</th>
          </tr>
        </thead>
        <tbody>
          {sweep.map((r) => (
            <tr key={r.bits} data-bits={r.bits}>
              <td className="num">{r.bits}</td>
              <td>{r.precision}</td>
              <td className="num">{agreementText(r.agreement)}</td>
              <td className="num">{errorText(r.max_error)}</td>
              <td className="num">{errorText(r.mean_error)}</td>
              <td className="num">{r.seconds.toFixed(1)} s</td>
            </tr>
          ))}
        </tbody>
      </table>
      <SweepChart rows={sweep} />
    </div>
  );
}

// The "Compare" tab: any two finished benchmarks of the graph side by side, so that a user
// sees what an edit bought: each backend × batch size with both medians and B/A, the
// machines they ran on, and the node costs of both at one batch size with B/A.

import { useEffect, useMemo, useState } from "react";

import { api } from "../api/client";
import type { Job } from "../api/types";
import {
  compareNodes, compareRows, costsAtBatch, kindOf, resultOf, type ComparedNode, type ComparedRow,
} from "./benchmark";
import { machineText, ms } from "./Benchmark";
import { toRunJob } from "./events";
import { describeError, useRuns } from "./store";

/** "0.82×" */
export function ratioText(r: number | null): string {
  return r === null ? "–" : `${r.toFixed(r >= 10 ? 1 : 2)}×`;
}

const ratioClass = (r: number | null) => (r === null ? "" : r < 0.95 ? "bench-faster" : r > 1.05 ? "bench-slower" : "");

export function CompareRowsTable({ rows }: { rows: readonly ComparedRow[] }) {
  return (
    <table className="bench-table" data-testid="bench-compare">
      <thead>
        <tr>
          <th>Backend</th>
          <th className="num">Batch</th>
          <th className="num">A median</th>
          <th className="num">B median</th>
          <th className="num" title="B's median over A's: below 1, B is faster">B/A</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={`${r.backend}@${r.batch}`} data-row={`${r.backend}@${r.batch}`}>
            <td>{r.backend}</td>
            <td className="num">{r.batch}</td>
            <td className="num" title={r.a?.error || undefined}>{r.a ? (r.a.error ? "cannot run" : ms(r.a.latency_ms_median)) : "–"}</td>
            <td className="num" title={r.b?.error || undefined}>{r.b ? (r.b.error ? "cannot run" : ms(r.b.latency_ms_median)) : "–"}</td>
            <td className={`num ${ratioClass(r.ratio)}`} data-testid="ratio">{ratioText(r.ratio)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function CompareNodesTable({ nodes }: { nodes: readonly ComparedNode[] }) {
  return (
    <table className="bench-table" data-testid="bench-compare-nodes">
      <thead>
        <tr>
          <th>Node</th>
          <th>Type</th>
          <th className="num">A</th>
          <th className="num">B</th>
          <th className="num">B/A</th>
        </tr>
      </thead>
      <tbody>
        {nodes.map((n) => (
          <tr key={n.node} data-node={n.node}>
            <td>{n.node}</td>
            <td>{n.type}</td>
            <td className="num">{n.a ? ms(n.a.ms) : "–"}</td>
            <td className="num">{n.b ? ms(n.b.ms) : "–"}</td>
            <td className={`num ${ratioClass(n.ratio)}`} data-testid="ratio">{ratioText(n.ratio)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The run with its result: the listed one when it carries it, else asked for. */
function useWithResult(id: number | null, runs: readonly Job[]): { run: Job | null; error: string | null } {
  const listed = runs.find((r) => r.id === id) ?? null;
  const complete = listed && resultOf(listed)?.rows.length ? listed : null;
  const [fetched, setFetched] = useState<{ id: number; run: Job | null; error: string | null } | null>(null);
  useEffect(() => {
    if (id === null || complete) return;
    let live = true;
    api.job(id).then(
      (raw) => live && setFetched({ id, run: toRunJob(raw), error: null }),
      (error: unknown) => live && setFetched({ id, run: null, error: describeError(error) }),
    );
    return () => {
      live = false;
    };
  }, [id, complete]);
  if (complete) return { run: complete, error: null };
  if (fetched && fetched.id === id) return { run: fetched.run, error: fetched.error };
  return { run: null, error: null };
}

function RunPicker({ label, value, runs, onChange }: { label: string; value: number | null; runs: readonly Job[]; onChange(id: number): void }) {
  return (
    <label className="runs-inline">
      <span className="runs-muted">{label}</span>
      <select data-testid={`bench-compare-${label.toLowerCase()}`} value={value ?? ""} aria-label={`Benchmark ${label}`} onChange={(e) => onChange(Number(e.target.value))}>
        {value === null && <option value="">Choose…</option>}
        {runs.map((r) => (
          <option key={r.id} value={r.id}>#{r.id} · v{r.version}{r.device ? ` · ${r.device}` : ""}</option>
        ))}
      </select>
    </label>
  );
}

export function Compare() {
  const all = useRuns((s) => s.runs);
  const finished = useMemo(() => all.filter((r) => kindOf(r) === "benchmark" && r.status === "succeeded"), [all]);
  // Default: the latest against the one before it (A the older).
  const [picked, setPicked] = useState<{ a: number | null; b: number | null }>({ a: null, b: null });
  const enough = finished.length >= 2;
  const a = enough ? picked.a ?? finished[1].id : null;
  const b = enough ? picked.b ?? finished[0].id : null;
  const runA = useWithResult(a, finished);
  const runB = useWithResult(b, finished);
  const resultA = resultOf(runA.run);
  const resultB = resultOf(runB.run);
  const rows = useMemo(() => compareRows(resultA?.rows ?? [], resultB?.rows ?? []), [resultA, resultB]);
  const common = useMemo(() => {
    const inB = new Set(resultB?.node_costs.map((c) => c.batch));
    return (resultA?.node_costs ?? []).map((c) => c.batch).filter((x) => inB.has(x)).sort((x, y) => x - y);
  }, [resultA, resultB]);
  const [batch, setBatch] = useState<number | null>(null);
  const nodeBatch = batch !== null && common.includes(batch) ? batch : common[common.length - 1] ?? null;
  const nodes = useMemo(() => compareNodes(
    costsAtBatch(resultA?.node_costs ?? [], nodeBatch), costsAtBatch(resultB?.node_costs ?? [], nodeBatch),
  ), [resultA, resultB, nodeBatch]);

  if (!enough) {
    return <p className="runs-empty">Compare needs two finished benchmarks of this graph{finished.length ? "; there is one so far" : ""}.</p>;
  }
  const error = runA.error ?? runB.error;
  return (
    <div className="bench-compare">
      <div className="bench-tools">
        <RunPicker label="A" value={a} runs={finished} onChange={(id) => setPicked((p) => ({ ...p, a: id }))} />
        <RunPicker label="B" value={b} runs={finished} onChange={(id) => setPicked((p) => ({ ...p, b: id }))} />
        <span className="runs-muted">B/A below 1: B is faster</span>
      </div>
      {error && <p className="runs-error">{error}</p>}
      {resultA?.machine && <p className="bench-machine runs-muted">A: {machineText(resultA.machine)}</p>}
      {resultB?.machine && <p className="bench-machine runs-muted">B: {machineText(resultB.machine)}</p>}
      {resultA && resultB && <CompareRowsTable rows={rows} />}
      {nodeBatch !== null && (
        <>
          <div className="bench-tools">
            <h3 className="runs-h">Per node</h3>
            {common.length > 1 && (
              <label className="runs-inline">
                <span className="runs-muted">batch</span>
                <select value={nodeBatch} aria-label="Batch size of the node costs" onChange={(e) => setBatch(Number(e.target.value))}>
                  {common.map((x) => <option key={x} value={x}>{x}</option>)}
                </select>
              </label>
            )}
            {common.length === 1 && <span className="runs-muted">batch {nodeBatch}</span>}
          </div>
          <CompareNodesTable nodes={nodes} />
        </>
      )}
    </div>
  );
}

// "What flows here": the inspector's figures of the value on a selected edge, for the open
// run's fixed validation example (the one its attention maps show): shape, a histogram,
// mean, std and the share of exact zeros. Asked once per run (and per checkpoint while it
// trains); every edge comes in the one answer.

import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { EdgeStats, EdgeValues } from "../api/types";
import { charLabel, figure, histogramBars, percent, weightsKey } from "./explain";
import { describeError, useRuns } from "./store";

const WIDTH = 220;
const HEIGHT = 56;
const KEPT = 4; // answers kept, by run and weights

const answers = new Map<string, Promise<EdgeValues>>();

function edgesOf(key: string, jobId: number, share: string | null): Promise<EdgeValues> {
  let found = answers.get(key);
  if (!found) {
    found = api.jobEdges(jobId, share ?? undefined);
    found.catch(() => answers.delete(key)); // asked again next time
    answers.set(key, found);
    while (answers.size > KEPT) answers.delete(answers.keys().next().value as string);
  }
  return found;
}

/** Forget every answer (tests). */
export function forgetEdgeValues(): void {
  answers.clear();
}

export function Histogram({ stats }: { stats: EdgeStats }) {
  const bars = histogramBars(stats.histogram, WIDTH, HEIGHT);
  const edges = stats.histogram.edges;
  return (
    <figure className="flow-hist">
      <svg width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img"
        aria-label={`histogram of ${bars.reduce((n, b) => n + b.count, 0)} values`} data-testid="edge-histogram">
        {bars.map((b, i) => (
          <rect key={i} x={b.x} y={HEIGHT - b.height} width={b.width} height={b.height}>
            <title>{`${b.count} in [${figure(b.from)}, ${figure(b.to)}]`}</title>
          </rect>
        ))}
      </svg>
      {edges.length > 0 && (
        <figcaption className="runs-num"><span>{figure(edges[0])}</span><span>{figure(edges[edges.length - 1])}</span></figcaption>
      )}
    </figure>
  );
}

export function EdgeStatsView({ stats }: { stats: EdgeStats }) {
  return (
    <>
      <table className="kv" data-testid="edge-stats">
        <tbody>
          <tr><th>shape</th><td className="mono">[{stats.shape.join(", ")}] <span className="muted">{stats.dtype}</span></td></tr>
          <tr><th>mean</th><td>{figure(stats.mean)}</td></tr>
          <tr><th>std</th><td>{figure(stats.std)}</td></tr>
          <tr><th>zeros</th><td data-testid="edge-zeros">{percent(stats.zeros)}{stats.zeros === 1 ? <span className="muted"> — every value is 0 (a dead ReLU?)</span> : null}</td></tr>
          {stats.nonfinite > 0 && <tr><th>NaN / inf</th><td>{stats.nonfinite}</td></tr>}
          {stats.counted < stats.shape.reduce((n, d) => n * d, 1) && (
            <tr><th>from</th><td>{stats.counted.toLocaleString("en")} values drawn at random</td></tr>
          )}
        </tbody>
      </table>
      <Histogram stats={stats} />
    </>
  );
}

/** The figures of the value `source` (`node.port`) for the open run, or why there are none. */
export function EdgeFlow({ source }: { source: string }) {
  const job = useRuns((s) => s.job);
  const share = useRuns((s) => s.share);
  const key = weightsKey(job);
  const jobId = job?.id;
  const [state, setState] = useState<{ key: string; values?: EdgeValues; error?: string } | null>(null);
  useEffect(() => {
    if (!key || jobId === undefined) return;
    let live = true;
    edgesOf(key, jobId, share).then(
      (values) => live && setState({ key, values }),
      (error) => live && setState({ key, error: describeError(error) }),
    );
    return () => {
      live = false;
    };
  }, [key, jobId, share]);
  if (!job || job.kind !== "train") return null;
  if (!key) {
    return (
      <section className="flow" data-testid="edge-flow" aria-label="What flows here">
        <h3>What flows here <span className="muted">(run #{job.id})</span></h3>
        <p className="muted small">Run #{job.id} has no weights yet: the values show after its first checkpoint.</p>
      </section>
    );
  }
  const current = state?.key === key ? state : null;
  const stats = current?.values?.edges[source];
  const example = current?.values?.example;
  return (
    <section className="flow" data-testid="edge-flow" aria-label="What flows here">
      <h3>What flows here <span className="muted">(run #{job.id}, validation example)</span></h3>
      {!current && <p className="muted small">Reading the run's model…</p>}
      {current?.error && <p className="runs-error">{current.error}</p>}
      {current?.values && !stats && <p className="muted small">This edge carries no value of its own here (inside a block, or not on the run's path).</p>}
      {stats && <EdgeStatsView stats={stats} />}
      {example && (
        <p className="muted small">
          {example.weights === "checkpoint" ? `From the checkpoint at step ${example.step}, as the run trains. ` : `From the final weights (step ${example.step}). `}
          {example.tokens ? <>Example: <span className="mono">{example.tokens.slice(0, 32).map(charLabel).join(example.tokens.some((t) => t.length > 1) ? " " : "")}{example.tokens.length > 32 ? "…" : ""}</span></> : null}
        </p>
      )}
    </section>
  );
}

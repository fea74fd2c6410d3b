// What a run's model does to the data, in figures a panel can draw: which value an edge
// carries (the API keys them `node.port`), a histogram's bars, and numbers in few digits.

import type { EdgeStats, Job } from "../api/types";
import { parseEndpoint, type Catalog, type Graph } from "../graph/ops";
import { isEnded } from "./events";

/** The key of the value an edge carries (`hidden.out`, `qkv.k`), from the edge's key
 * (`from->to`, as the canvas names edges); null for a key that is not an edge's. */
export function edgeSource(key: string, graph: Graph, catalog: Catalog): string | null {
  const arrow = key.indexOf("->");
  if (arrow <= 0) return null;
  const from = parseEndpoint(key.slice(0, arrow), graph, catalog, "outputs");
  return `${from.node}.${from.port}`;
}

export interface Bar {
  x: number;
  width: number;
  height: number;
  count: number;
  from: number;
  to: number;
}

/** A histogram's bars in a box of `width` × `height`, heights scaled to the fullest bin
 * (a bin with any value is at least 1 px high, so that a lone value shows). */
export function histogramBars(hist: EdgeStats["histogram"], width: number, height: number): Bar[] {
  const n = hist.counts.length;
  if (!n) return [];
  const most = Math.max(...hist.counts);
  const w = width / n;
  return hist.counts.map((count, i) => ({
    x: i * w,
    width: Math.max(w - (n > 1 ? 1 : 0), 1),
    height: count && most ? Math.max(1, (count / most) * height) : 0,
    count,
    from: hist.edges[i],
    to: hist.edges[Math.min(i + 1, hist.edges.length - 1)],
  }));
}

/** A figure in at most four significant digits; "—" for none. */
export function figure(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/** A share, 0 to 1, in percent: "100%", "48.4%", "<0.1%" for a few among many. */
export function percent(share: number): string {
  if (share === 0 || share === 1) return `${share * 100}%`;
  if (share < 0.001) return "<0.1%";
  return `${(share * 100).toFixed(1)}%`;
}

/** What refetches a run's edge values: the run, and while it trains, the checkpoint it is
 * at (about: one every checkpoint_interval steps); null when it has no weights to read. */
export function weightsKey(job: Job | null): string | null {
  if (!job || job.kind !== "train") return null;
  if (isEnded(job.status)) return `${job.id}:${job.status}`;
  if (job.status !== "running" || job.step <= 0) return null;
  const every = Number(job.config.checkpoint_interval ?? job.config.eval_interval ?? 50) || 50;
  return `${job.id}:running:${Math.floor(job.step / every)}`;
}

/** A character as a label: a space, line break or tab made visible. */
export function charLabel(c: string): string {
  if (c === " ") return "␣";
  if (c === "\n") return "↵";
  if (c === "\t") return "⇥";
  const code = c.codePointAt(0) ?? 0;
  if (code < 32 || code === 127) return `\\x${code.toString(16).padStart(2, "0")}`;
  return c;
}

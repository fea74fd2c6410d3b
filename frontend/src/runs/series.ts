// What the charts, heatmaps and sample list show, derived from a run's events: one series
// per metric name, the attention snapshots per module, the text samples, the latest status.
//
// A run that resumed from a checkpoint reports the steps after that checkpoint again; the
// event with the higher seq is from the attempt that went on. So when a point arrives at a
// step at or before the last one of its series, the points from that step on are dropped
// before it is added (the lost attempt's tail is replaced, not interleaved).

import type { AttentionEvent, NonFinite, SampleEvent, StatusEvent } from "../api/types";
import { metricValue, type RunEvent } from "./events";

export interface Series {
  steps: number[];
  values: number[];
}

export interface Derived {
  /** seq of the last event folded in */
  lastSeq: number;
  /** step of the latest metric or status event */
  step: number;
  series: Record<string, Series>;
  /** per module path, ordered by step */
  attention: Record<string, AttentionEvent[]>;
  /** ordered by step, oldest first */
  samples: SampleEvent[];
  /** the latest status event */
  status: StatusEvent | null;
}

export function emptyDerived(): Derived {
  return { lastSeq: 0, step: 0, series: {}, attention: {}, samples: [], status: null };
}

/** Index of the first element of ascending `items` whose step is >= `step`. */
function firstAtOrAfter<T>(items: readonly T[], step: number, stepOf: (t: T) => number): number {
  let lo = 0, hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (stepOf(items[mid]) < step) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `list` with `item` added at `step`, dropping what a resumed attempt replaces. Mutates. */
function pushByStep<T>(list: T[], item: T, step: number, stepOf: (t: T) => number): void {
  if (list.length && stepOf(list[list.length - 1]) >= step) {
    list.length = firstAtOrAfter(list, step, stepOf);
  }
  list.push(item);
}

/**
 * `prev` with `events` folded in. `events` must come after `prev.lastSeq`, in seq order
 * (what a follower delivers); anything at or before `prev.lastSeq` is skipped. Series and
 * lists that change are copied, the others are shared, so React selectors see exactly
 * what changed.
 */
export function deriveEvents(prev: Derived, events: readonly RunEvent[]): Derived {
  let next: Derived | null = null;
  const touchedSeries = new Set<string>();
  const touchedAttention = new Set<string>();
  let samplesCopied = false;
  for (const e of events) {
    if (e.seq <= (next ?? prev).lastSeq) continue;
    if (!next) next = { ...prev, series: { ...prev.series }, attention: { ...prev.attention } };
    next.lastSeq = e.seq;
    switch (e.type) {
      case "metric": {
        let s = next.series[e.name];
        if (!touchedSeries.has(e.name)) {
          s = s ? { steps: s.steps.slice(), values: s.values.slice() } : { steps: [], values: [] };
          next.series[e.name] = s;
          touchedSeries.add(e.name);
        }
        if (s.steps.length && s.steps[s.steps.length - 1] >= e.step) {
          const cut = firstAtOrAfter(s.steps, e.step, (x) => x);
          s.steps.length = cut;
          s.values.length = cut;
        }
        s.steps.push(e.step);
        s.values.push(metricValue(e));
        next.step = e.step;
        break;
      }
      case "attention": {
        if (!touchedAttention.has(e.node)) {
          next.attention[e.node] = (next.attention[e.node] ?? []).slice();
          touchedAttention.add(e.node);
        }
        pushByStep(next.attention[e.node], e, e.step, (a) => a.step);
        break;
      }
      case "sample": {
        if (!samplesCopied) {
          next.samples = next.samples.slice();
          samplesCopied = true;
        }
        pushByStep(next.samples, e, e.step, (s) => s.step);
        break;
      }
      case "status":
        next.status = e;
        next.step = e.step;
        break;
    }
  }
  return next ?? prev;
}

/** Everything derived from a complete, ordered list of events. */
export function deriveAll(events: readonly RunEvent[]): Derived {
  return deriveEvents(emptyDerived(), events);
}

/**
 * Exponential moving average with bias correction (as TensorBoard smooths): `weight` 0 is
 * the raw series, 0.99 very smooth. Non-finite values (a diverged loss) give null and do
 * not disturb the average.
 */
export function ema(values: readonly number[], weight: number): (number | null)[] {
  const w = Math.min(Math.max(weight, 0), 0.999);
  const out: (number | null)[] = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    const debias = w === 0 ? 1 : 1 - Math.pow(w, n);
    out[i] = last / debias;
  }
  return out;
}

/**
 * Series on one x axis: the sorted union of their steps, and per series its value at each
 * step or null (what uPlot's AlignedData wants).
 */
export function alignSeries(series: readonly (Series | undefined)[]): [number[], ...(number | null)[][]] {
  const all = new Set<number>();
  for (const s of series) if (s) for (const x of s.steps) all.add(x);
  const xs = [...all].sort((a, b) => a - b);
  const columns = series.map((s) => {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    if (!s) return col;
    let j = 0;
    for (let i = 0; i < s.steps.length; i++) {
      while (xs[j] < s.steps[i]) j++;
      const v = s.values[i];
      col[j] = Number.isFinite(v) ? v : null;
    }
    return col;
  });
  return [xs, ...columns];
}

/** Module paths in natural order: blocks.2.attn before blocks.10.attn. */
export function sortPaths(paths: Iterable<string>): string[] {
  const collator = new Intl.Collator(undefined, { numeric: true });
  return [...paths].sort(collator.compare);
}

/** What a non-finite value was: NaN, or an infinity of either sign. */
export function nonFiniteKind(v: number): NonFinite {
  if (Number.isNaN(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

/** The steps at which a series was not a finite number (a diverged loss), in order. */
export function nonFinitePoints(s: Series | undefined): { step: number; kind: NonFinite }[] {
  const out: { step: number; kind: NonFinite }[] = [];
  if (!s) return out;
  for (let i = 0; i < s.steps.length; i++) {
    if (!Number.isFinite(s.values[i])) out.push({ step: s.steps[i], kind: nonFiniteKind(s.values[i]) });
  }
  return out;
}

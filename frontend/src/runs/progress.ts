// How a run is going, from its events: the measured step rate, the time left, the
// throughput, and whether the model has started to memorize its training data. Pure
// functions; the drawer's RunProgress shows them.

import type { RunEvent } from "./events";
import type { Series } from "./series";

/** How far back the step rate looks, in seconds of the run's own clock. */
export const RATE_WINDOW_S = 30;

export interface StepRate {
  /** steps per second */
  perSecond: number;
  /** the step and time (Unix seconds) of the newest point it was measured to */
  step: number;
  time: number;
}

/**
 * Steps per second over the last stretch of the run (about `windowS` seconds up to its
 * newest metric event): measured between metric events only, so the time the run spent
 * queued or setting up does not count. Null until two points at different steps and
 * times are there. A resumed attempt (its steps go back) is measured from where it resumed.
 */
export function stepRate(events: readonly RunEvent[], windowS = RATE_WINDOW_S): StepRate | null {
  let newest: { step: number; time: number } | null = null;
  let oldest: { step: number; time: number } | null = null;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.type !== "metric") continue;
    if (!newest) {
      newest = { step: e.step, time: e.time };
      continue;
    }
    const before = oldest ?? newest;
    if (e.step > before.step) break; // an earlier attempt's tail
    if (e.step < before.step) {
      oldest = { step: e.step, time: e.time };
      if (newest.time - e.time >= windowS) break;
    }
  }
  if (!newest || !oldest) return null;
  const dt = newest.time - oldest.time;
  const steps = newest.step - oldest.step;
  if (!(dt > 0) || steps <= 0) return null;
  return { perSecond: steps / dt, step: newest.step, time: newest.time };
}

/** Seconds until `total` steps at `rate`, counted from the step it was measured at. */
export function secondsLeft(rate: StepRate | null, total: number): number | null {
  if (!rate || rate.perSecond <= 0) return null;
  return Math.max(0, total - rate.step) / rate.perSecond;
}

/** A duration for people: "45 s", "3 min 05 s", "1 h 02 min"; "—" when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
}

export interface Throughput {
  value: number;
  unit: "tokens/s" | "samples/s";
}

/** The run's newest throughput metric (`tokens_per_s` for text, else `samples_per_s`). */
export function throughput(series: Readonly<Record<string, Series>>): Throughput | null {
  for (const [name, unit] of [["tokens_per_s", "tokens/s"], ["samples_per_s", "samples/s"]] as const) {
    const s = series[name];
    const v = s?.values[s.values.length - 1];
    if (v !== undefined && Number.isFinite(v)) return { value: v, unit };
  }
  return null;
}

/** A throughput in few digits: "812 samples/s", "12.3k tokens/s", "1.2M tokens/s". */
export function formatThroughput(t: Throughput | null): string {
  if (!t) return "—";
  const v = t.value;
  const text = v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : v >= 100 ? v.toFixed(0) : v.toPrecision(2);
  return `${text} ${t.unit}`;
}

export interface Overfitting {
  /** the evaluation steps at which the validation loss rose, and the values */
  steps: [number, number, number];
  val: [number, number, number];
}

/** Mean of the series' values at steps in (after, upTo]; null when there are none. */
function meanBetween(s: Series, after: number, upTo: number): number | null {
  let sum = 0, n = 0;
  for (let i = 0; i < s.steps.length; i++) {
    if (s.steps[i] > after && s.steps[i] <= upTo && Number.isFinite(s.values[i])) {
      sum += s.values[i];
      n++;
    }
  }
  return n ? sum / n : null;
}

/**
 * Whether the model is memorizing its training data: the validation loss rose at each of
 * the last two evaluations while the training loss fell over the same stretch. The training
 * loss is compared as its mean over the interval before the first of the three evaluations
 * and over the interval before the last (single logged points are noisy). Null otherwise:
 * a single bump, or a training loss that rises too (that is a bad learning rate, not
 * memorizing).
 */
export function detectOverfitting(train: Series | undefined, val: Series | undefined): Overfitting | null {
  if (!train || !val || val.steps.length < 3) return null;
  const n = val.steps.length;
  const [a, b, c] = [n - 3, n - 2, n - 1];
  const v = [val.values[a], val.values[b], val.values[c]];
  if (!v.every(Number.isFinite) || !(v[0] < v[1] && v[1] < v[2])) return null;
  const before = n >= 4 ? val.steps[n - 4] : -Infinity;
  const trainThen = meanBetween(train, before, val.steps[a]);
  const trainNow = meanBetween(train, val.steps[b], val.steps[c]);
  if (trainThen === null || trainNow === null || !(trainNow < trainThen)) return null;
  return { steps: [val.steps[a], val.steps[b], val.steps[c]], val: [v[0], v[1], v[2]] };
}

/** The warning, in words that fit the run's data. */
export function overfittingAdvice(text: boolean): string {
  return text
    ? "The model is memorizing the training text: the validation loss rose at the last two evaluations while the training loss fell. More data, fewer steps or dropout help."
    : "The model is memorizing the training examples: the validation loss rose at the last two evaluations while the training loss fell. More data, fewer steps or dropout help.";
}

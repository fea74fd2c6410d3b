import { describe, expect, it } from "vitest";

import type { RunEvent } from "./events";
import {
  detectOverfitting, formatDuration, formatThroughput, overfittingAdvice, secondsLeft, stepRate, throughput,
} from "./progress";
import type { Series } from "./series";

let seq = 0;
const metric = (step: number, time: number, name = "train_loss", value = 1): RunEvent =>
  ({ type: "metric", seq: ++seq, step, time, name, value });
const status = (step: number, time: number, s: "queued" | "running"): RunEvent => ({
  type: "status", seq: ++seq, step, time, status: s, total: 300, attempts: 1, device: "cpu", worker: "w", error: "",
});
const series = (pairs: [number, number][]): Series => ({ steps: pairs.map((p) => p[0]), values: pairs.map((p) => p[1]) });

describe("step rate", () => {
  it("is unknown until two logged steps are there", () => {
    expect(stepRate([])).toBeNull();
    expect(stepRate([status(0, 100, "queued"), status(0, 160, "running"), metric(10, 170)])).toBeNull();
    // several metrics at one step are one point
    expect(stepRate([metric(10, 170), metric(10, 170.1, "lr")])).toBeNull();
  });

  it("measures between metric events, not from the queueing", () => {
    // Queued for a minute, a slow start, then 10 steps every second.
    const events = [status(0, 0, "queued"), status(0, 60, "running"), metric(10, 100), metric(10, 100, "lr"),
      metric(20, 101), metric(20, 101, "lr"), metric(30, 102)];
    const rate = stepRate(events)!;
    expect(rate.perSecond).toBeCloseTo(10);
    expect(rate.step).toBe(30);
    expect(rate.time).toBe(102);
  });

  it("looks only at the last stretch", () => {
    // 1 step/s for a long while, then 10 steps/s for the last 40 s.
    const events: RunEvent[] = [];
    for (let t = 0; t <= 100; t += 10) events.push(metric(t, t));
    for (let t = 110; t <= 150; t += 10) events.push(metric(100 + (t - 100) * 10, t));
    expect(stepRate(events, 30)!.perSecond).toBeCloseTo(10);
    expect(stepRate(events, 1000)!.perSecond).toBeCloseTo(600 / 150);
  });

  it("measures a resumed attempt from where it resumed", () => {
    // Got to step 40, lost; resumed from step 20 much later at 2 steps/s.
    const events = [metric(10, 0), metric(20, 1), metric(30, 2), metric(40, 3), metric(30, 500), metric(40, 505)];
    expect(stepRate(events)!.perSecond).toBeCloseTo(2);
  });
});

describe("time left and its words", () => {
  it("counts the remaining steps at the rate", () => {
    expect(secondsLeft({ perSecond: 10, step: 100, time: 0 }, 300)).toBe(20);
    expect(secondsLeft({ perSecond: 10, step: 300, time: 0 }, 300)).toBe(0);
    expect(secondsLeft(null, 300)).toBeNull();
  });

  it("formats durations for people", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(NaN)).toBe("—");
    expect(formatDuration(4.4)).toBe("4 s");
    expect(formatDuration(59.4)).toBe("59 s");
    expect(formatDuration(185)).toBe("3 min 05 s");
    expect(formatDuration(3720)).toBe("1 h 02 min");
  });

  it("reads the newest throughput, tokens first", () => {
    expect(throughput({})).toBeNull();
    expect(throughput({ samples_per_s: series([[10, 800], [20, 812.4]]) })).toEqual({ value: 812.4, unit: "samples/s" });
    expect(throughput({ tokens_per_s: series([[10, 12345]]) })).toEqual({ value: 12345, unit: "tokens/s" });
    expect(formatThroughput({ value: 812.4, unit: "samples/s" })).toBe("812 samples/s");
    expect(formatThroughput({ value: 12345, unit: "tokens/s" })).toBe("12.3k tokens/s");
    expect(formatThroughput({ value: 2.5e6, unit: "tokens/s" })).toBe("2.5M tokens/s");
    expect(formatThroughput({ value: 7.25, unit: "samples/s" })).toBe("7.3 samples/s");
    expect(formatThroughput(null)).toBe("—");
  });
});

describe("memorizing detector", () => {
  // Training loss falling steadily, logged every 10 steps; evaluations every 50.
  const falling = series(Array.from({ length: 30 }, (_, i) => [(i + 1) * 10, 3 - i * 0.08] as [number, number]));
  const rising = series(Array.from({ length: 30 }, (_, i) => [(i + 1) * 10, 1 + i * 0.08] as [number, number]));

  it("fires when the validation loss rose twice in a row while training loss fell", () => {
    const val = series([[50, 2.5], [100, 2.0], [150, 2.1], [200, 2.3]]);
    expect(detectOverfitting(falling, val)).toEqual({ steps: [100, 150, 200], val: [2.0, 2.1, 2.3] });
  });

  it("does not fire on a single bump", () => {
    expect(detectOverfitting(falling, series([[50, 2.5], [100, 2.0], [150, 2.1]]))).toBeNull();
    expect(detectOverfitting(falling, series([[50, 2.5], [100, 2.0], [150, 2.1], [200, 2.05]]))).toBeNull();
    expect(detectOverfitting(falling, series([[50, 2.5], [100, 2.6], [150, 2.4], [200, 2.5]]))).toBeNull();
  });

  it("does not fire when the training loss rises too", () => {
    expect(detectOverfitting(rising, series([[50, 2.5], [100, 2.0], [150, 2.1], [200, 2.3]]))).toBeNull();
  });

  it("needs three evaluations and finite values", () => {
    expect(detectOverfitting(falling, series([[100, 2.0], [150, 2.1]]))).toBeNull();
    expect(detectOverfitting(undefined, series([[100, 2.0], [150, 2.1], [200, 2.3]]))).toBeNull();
    expect(detectOverfitting(falling, series([[100, 2.0], [150, NaN], [200, 2.3]]))).toBeNull();
    // the first three evaluations: the training loss before the first one counts
    expect(detectOverfitting(falling, series([[50, 2.0], [100, 2.1], [150, 2.3]]))).not.toBeNull();
  });

  it("words the advice for text and for other data", () => {
    expect(overfittingAdvice(true)).toMatch(/memorizing the training text.*more data, fewer steps or dropout help/i);
    expect(overfittingAdvice(false)).toMatch(/memorizing the training examples/);
  });
});

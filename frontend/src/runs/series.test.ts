import { describe, expect, it } from "vitest";

import type { RunEvent } from "./events";
import { alignSeries, deriveAll, deriveEvents, ema, emptyDerived, sortPaths } from "./series";

let seq = 0;
const m = (step: number, name: string, value: number): RunEvent => ({ type: "metric", seq: ++seq, step, time: 0, name, value });
const sample = (step: number, text: string): RunEvent => ({ type: "sample", seq: ++seq, step, time: 0, text });
const attn = (step: number, node: string): RunEvent => ({
  type: "attention", seq: ++seq, step, time: 0, node, heads: 1, rows: 1, cols: 1, scale: [[1]], data: "/w==",
});
const status = (step: number, s: "running" | "succeeded"): RunEvent => ({
  type: "status", seq: ++seq, step, time: 0, status: s, total: 100, attempts: 1, device: "cpu", worker: "w", error: "",
});

describe("series derivation", () => {
  it("makes one series per metric name, in step order", () => {
    seq = 0;
    const d = deriveAll([
      status(0, "running"),
      m(10, "train_loss", 3.9), m(10, "lr", 0.0015),
      m(20, "train_loss", 3.1), m(20, "lr", 0.003),
      m(20, "val_loss", 3.2), m(20, "val_accuracy", 0.12),
    ]);
    expect(d.series.train_loss).toEqual({ steps: [10, 20], values: [3.9, 3.1] });
    expect(d.series.lr.values).toEqual([0.0015, 0.003]);
    expect(d.series.val_loss).toEqual({ steps: [20], values: [3.2] });
    expect(d.series.val_accuracy).toEqual({ steps: [20], values: [0.12] });
    expect(d.step).toBe(20);
    expect(d.status?.status).toBe("running");
  });

  it("replaces the tail a resumed attempt reports again", () => {
    seq = 0;
    // The first attempt got to step 40; its worker was lost; the run resumed from the
    // checkpoint at step 20 and reported 30 and 40 again.
    const d = deriveAll([
      m(10, "train_loss", 4), m(20, "train_loss", 3), m(30, "train_loss", 2.9), m(40, "train_loss", 2.8),
      m(30, "train_loss", 2.5), m(40, "train_loss", 2.2), m(50, "train_loss", 2.0),
    ]);
    expect(d.series.train_loss).toEqual({ steps: [10, 20, 30, 40, 50], values: [4, 3, 2.5, 2.2, 2.0] });
  });

  it("gives the same result folded in batches as all at once", () => {
    seq = 0;
    const events = [
      m(10, "train_loss", 4), sample(10, "ab"), attn(10, "blocks.0.attn"),
      m(20, "train_loss", 3), m(20, "val_loss", 3.5), sample(20, "abc"), attn(20, "blocks.0.attn"),
      m(10, "train_loss", 3.9), attn(10, "blocks.0.attn"), sample(10, "ax"), m(30, "train_loss", 2),
    ];
    let d = emptyDerived();
    for (let i = 0; i < events.length; i += 3) d = deriveEvents(d, events.slice(i, i + 3));
    const once = deriveAll(events);
    expect(d.series).toEqual(once.series);
    expect(d.samples.map((s) => s.text)).toEqual(["ax"]);
    expect(once.samples.map((s) => s.text)).toEqual(["ax"]);
    expect(d.attention["blocks.0.attn"].map((a) => a.step)).toEqual([10]);
    expect(d.series.train_loss.steps).toEqual([10, 30]);
  });

  it("skips events already folded in", () => {
    seq = 0;
    const events = [m(10, "train_loss", 4), m(20, "train_loss", 3)];
    const d = deriveAll(events);
    expect(deriveEvents(d, events)).toBe(d);
  });

  it("does not touch the series a batch leaves alone", () => {
    seq = 0;
    const d = deriveAll([m(10, "train_loss", 4), m(10, "val_loss", 4.2)]);
    const next = deriveEvents(d, [m(20, "train_loss", 3)]);
    expect(next.series.val_loss).toBe(d.series.val_loss);
    expect(next.series.train_loss).not.toBe(d.series.train_loss);
    expect(d.series.train_loss.values).toEqual([4]); // the old state is not mutated
  });

  it("keeps every attention snapshot per module", () => {
    seq = 0;
    const d = deriveAll([attn(50, "blocks.0.attn"), attn(50, "blocks.1.attn"), attn(100, "blocks.0.attn")]);
    expect(d.attention["blocks.0.attn"].map((a) => a.step)).toEqual([50, 100]);
    expect(d.attention["blocks.1.attn"].map((a) => a.step)).toEqual([50]);
  });
});

describe("ema", () => {
  it("is the raw series at 0", () => {
    expect(ema([3, 1, 2], 0)).toEqual([3, 1, 2]);
  });

  it("starts at the first value (bias-corrected) and follows with lag", () => {
    const out = ema([2, 4, 4, 4], 0.5) as number[];
    expect(out[0]).toBeCloseTo(2);
    // (0.5*0.5*2 + 0.5*... ) debiased: last = 0.5*1 + 0.5*4 = 2.5 / 0.75
    expect(out[1]).toBeCloseTo(2.5 / 0.75);
    expect(out[1]).toBeGreaterThan(2);
    expect(out[1]).toBeLessThan(4);
    expect(out[3]).toBeGreaterThan(out[2]);
    expect(out[3]).toBeLessThan(4);
  });

  it("smooths noise: a heavier weight gives a smaller spread", () => {
    const noisy = Array.from({ length: 200 }, (_, i) => 2 + (i % 2 ? 0.5 : -0.5));
    const spread = (xs: (number | null)[]) => {
      const tail = (xs.slice(100) as number[]);
      return Math.max(...tail) - Math.min(...tail);
    };
    expect(spread(ema(noisy, 0.9))).toBeLessThan(spread(ema(noisy, 0.5)));
    expect(spread(ema(noisy, 0.5))).toBeLessThan(spread(noisy));
  });

  it("skips non-finite values without poisoning the average", () => {
    const out = ema([1, NaN, 1, Infinity, 1], 0.6);
    expect(out[1]).toBeNull();
    expect(out[3]).toBeNull();
    expect(out[4]).toBeCloseTo(1);
  });
});

describe("alignSeries", () => {
  it("puts series on the union of their steps, null where one has no point", () => {
    const [x, train, val] = alignSeries([
      { steps: [10, 20, 30, 40], values: [4, 3, 2, 1] },
      { steps: [20, 40], values: [3.5, 1.5] },
    ]);
    expect(x).toEqual([10, 20, 30, 40]);
    expect(train).toEqual([4, 3, 2, 1]);
    expect(val).toEqual([null, 3.5, null, 1.5]);
  });

  it("turns non-finite values into gaps", () => {
    const [, col] = alignSeries([{ steps: [1, 2], values: [NaN, 1] }]);
    expect(col).toEqual([null, 1]);
  });
});

describe("sortPaths", () => {
  it("orders module paths naturally", () => {
    expect(sortPaths(["blocks.10.attn", "blocks.2.attn", "attn"])).toEqual(["attn", "blocks.2.attn", "blocks.10.attn"]);
  });
});

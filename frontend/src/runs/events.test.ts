import { describe, expect, it } from "vitest";

import type { MetricEvent } from "../api/types";
import {
  findGap, mergeEvents, metricValue, toRunEvent, toRunEvents, toRunJob, type RunEvent,
} from "./events";

const metric = (seq: number, step = seq * 10, name = "train_loss", value = 1 / seq): RunEvent => ({
  type: "metric", seq, step, time: 0, name, value,
});

const seqs = (events: readonly RunEvent[]) => events.map((e) => e.seq);

describe("mergeEvents", () => {
  it("appends live events after the ones held", () => {
    const held = [metric(1), metric(2)];
    expect(seqs(mergeEvents(held, [metric(3), metric(4)]))).toEqual([1, 2, 3, 4]);
  });

  it("drops events already held, keeping one per seq", () => {
    const held = [metric(1), metric(2), metric(3)];
    const merged = mergeEvents(held, [metric(2), metric(3), metric(4), metric(4)]);
    expect(seqs(merged)).toEqual([1, 2, 3, 4]);
  });

  it("puts a backfilled gap in order", () => {
    const held = [metric(1), metric(2), metric(6)];
    expect(seqs(mergeEvents(held, [metric(5), metric(3), metric(4)]))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("keeps the held event when a duplicate seq differs", () => {
    const held = [metric(1, 10, "train_loss", 2.5)];
    const merged = mergeEvents(held, [metric(1, 10, "train_loss", 9)]);
    expect(merged).toHaveLength(1);
    expect((merged[0] as { value: number }).value).toBe(2.5);
  });

  it("returns the same array when nothing is new (no store update)", () => {
    const held = [metric(1), metric(2)];
    expect(mergeEvents(held, [metric(1)])).toBe(held);
    expect(mergeEvents(held, [])).toBe(held);
  });
});

describe("findGap", () => {
  it("asks for the events between the last held and the live one", () => {
    expect(findGap(6, 9)).toEqual({ since: 6, until: 8 });
    expect(findGap(0, 2)).toEqual({ since: 0, until: 1 });
  });

  it("sees no gap for the next event or one already held", () => {
    expect(findGap(6, 7)).toBeNull();
    expect(findGap(6, 6)).toBeNull();
    expect(findGap(6, 3)).toBeNull();
  });
});

describe("normalising the wire", () => {
  it("reads each type of event", () => {
    expect(toRunEvent({ type: "metric", seq: 3, step: 10, time: 1, name: "val_loss", value: 2.4 }))
      .toMatchObject({ type: "metric", name: "val_loss", value: 2.4 });
    expect(toRunEvent({ type: "status", seq: 2, step: 0, time: 1, status: "running", total: 300, attempts: 1, device: "cpu", worker: "w", error: "" }))
      .toMatchObject({ type: "status", status: "running", total: 300 });
    expect(toRunEvent({ type: "sample", seq: 25, step: 50, time: 1, text: "fisthoar" }))
      .toMatchObject({ type: "sample", text: "fisthoar" });
  });

  it("keeps an unknown type as a placeholder so seqs stay contiguous", () => {
    const events = toRunEvents([
      { type: "metric", seq: 1, step: 1, time: 0, name: "lr", value: 0.1 },
      { type: "benchmark", seq: 2, step: 1, time: 0 },
      { nonsense: true },
    ]);
    expect(seqs(events)).toEqual([1, 2]);
    expect(events[1]).toMatchObject({ type: "other", kind: "benchmark" });
  });

  it("reads a diverged metric (null value) as NaN", () => {
    const event = toRunEvent({ type: "metric", seq: 1, step: 1, time: 0, name: "train_loss", value: null });
    expect(event).toMatchObject({ type: "metric", value: null });
    expect(metricValue(event as MetricEvent)).toBeNaN();
  });

  it("reads a flagged metric as the NaN or infinity it was", () => {
    const metric = (value: unknown, nonfinite: unknown) =>
      toRunEvent({ type: "metric", seq: 1, step: 1, time: 0, name: "train_loss", value, nonfinite }) as MetricEvent;
    expect(metric(null, "nan")).toMatchObject({ value: null, nonfinite: "nan" });
    expect(metricValue(metric(null, "nan"))).toBeNaN();
    expect(metricValue(metric(null, "inf"))).toBe(Infinity);
    expect(metricValue(metric(null, "-inf"))).toBe(-Infinity);
    expect(metric(null, "-inf")).toMatchObject({ nonfinite: "-inf" });
    expect(metric(null, "bogus")).not.toHaveProperty("nonfinite");
    expect(metricValue(metric(null, "bogus"))).toBeNaN();
    expect(metric(2.5, undefined)).toMatchObject({ value: 2.5 });
    expect(metricValue(metric(2.5, undefined))).toBe(2.5);
  });

  it("keeps a run object's non-finite latest metrics apart from its numbers", () => {
    const job = toRunJob({ id: 4, metrics: { train_loss: null, lr: 0.1 }, nonfinite: { train_loss: "nan", lr: "x" } });
    expect(job.metrics).toEqual({ lr: 0.1 });
    expect(job.nonfinite).toEqual({ train_loss: "nan" });
  });

  it("fills a run object's missing members", () => {
    const job = toRunJob({ id: 4, status: "queued", position: 2, config: { steps: 300 } });
    expect(job).toMatchObject({ id: 4, status: "queued", position: 2, total_steps: 300, downloads: [], metrics: {} });
  });
});

describe("attention events from the wire", () => {
  const wire = { type: "attention", seq: 3, step: 10, time: 0, node: "blocks.0.attn", heads: 1, rows: 2, cols: 2, scale: [[1, 0.5]], data: "AAAA" };

  it("keep the example's tokens when the run sent them", () => {
    const event = toRunEvent({ ...wire, tokens: ["h", " "] });
    expect(event).toMatchObject({ type: "attention", tokens: ["h", " "] });
  });

  it("have none when an older run sent none, or sent something else", () => {
    expect(toRunEvent(wire)).not.toHaveProperty("tokens");
    expect(toRunEvent({ ...wire, tokens: ["h", 7] })).not.toHaveProperty("tokens");
    expect(toRunEvent({ ...wire, tokens: "h " })).not.toHaveProperty("tokens");
  });
});

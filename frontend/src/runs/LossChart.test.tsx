import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { LossChart, lossChartData, nonFiniteNotice } from "./LossChart";
import { deriveAll } from "./series";
import { toRunEvent, type RunEvent } from "./events";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

// A diverged run as the API sends it: the loss turns NaN at step 3 (null plus a flag).
const WIRE = [
  { type: "metric", seq: 1, step: 1, time: 0, name: "train_loss", value: 2.3 },
  { type: "metric", seq: 2, step: 2, time: 0, name: "train_loss", value: 40.5 },
  { type: "metric", seq: 3, step: 3, time: 0, name: "train_loss", value: null, nonfinite: "nan" },
  { type: "metric", seq: 4, step: 4, time: 0, name: "train_loss", value: null, nonfinite: "nan" },
  { type: "metric", seq: 5, step: 4, time: 0, name: "val_loss", value: null, nonfinite: "inf" },
];
const series = () => deriveAll(WIRE.map((e) => toRunEvent(e) as RunEvent)).series;

let root: Root;
let container: HTMLElement;

beforeEach(() => {
  container = document.createElement("div");
  document.body.appendChild(container);
  root = createRoot(container);
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
});

describe("a loss that is not a number", () => {
  it("is a gap in the chart's data, on the linear and the log scale", () => {
    for (const log of [false, true]) {
      const [x, raw, , val] = lossChartData(series(), 0, log);
      expect(x).toEqual([1, 2, 3, 4]);
      expect(raw).toEqual([2.3, 40.5, null, null]);
      expect(val).toEqual([null, null, null, null]);
    }
  });

  it("is named with its first step under the chart, and marked", () => {
    expect(nonFiniteNotice(series())).toEqual({
      steps: [3, 4],
      sentences: [
        "train loss was NaN at step 3 (2 points in all): a gap, marked in red",
        "val loss was infinite at step 4: a gap, marked in red",
      ],
    });
    act(() => root.render(<LossChart series={series()} />));
    const notice = container.querySelector('[data-testid="nonfinite-notice"]');
    expect(notice?.getAttribute("role")).toBe("status");
    expect(notice?.textContent).toBe(
      "train loss was NaN at step 3 (2 points in all): a gap, marked in red; "
      + "val loss was infinite at step 4: a gap, marked in red");
    // The chart is there, not replaced by "No metrics yet".
    expect(container.querySelector(".runs-chart-empty")).toBeNull();
  });

  it("leaves no notice on a healthy run", () => {
    act(() => root.render(<LossChart series={deriveAll([toRunEvent(WIRE[0]) as RunEvent]).series} />));
    expect(container.querySelector('[data-testid="nonfinite-notice"]')).toBeNull();
  });
});

describe("a mixture of experts' aux loss", () => {
  const withAux = (withAccuracy: boolean) => deriveAll([
    { type: "metric", seq: 1, step: 10, time: 0, name: "aux_loss", value: 0.011 },
    { type: "metric", seq: 2, step: 10, time: 0, name: "train_loss", value: 2.3 },
    { type: "metric", seq: 3, step: 20, time: 0, name: "aux_loss", value: 0.0 },
    { type: "metric", seq: 4, step: 20, time: 0, name: "train_loss", value: 1.9 },
    ...(withAccuracy ? [{ type: "metric", seq: 5, step: 20, time: 0, name: "val_accuracy", value: 0.5 }] : []),
  ].map((e) => toRunEvent(e) as RunEvent)).series;

  it("is its own column after the val loss, before the accuracy, a gap at 0 on the log scale", () => {
    const [x, raw, , val, aux, acc] = lossChartData(withAux(true), 0, false);
    expect(x).toEqual([10, 20]);
    expect(raw).toEqual([2.3, 1.9]);
    expect(val).toEqual([null, null]);
    expect(aux).toEqual([0.011, 0.0]);
    expect(acc).toEqual([null, 0.5]);
    expect(lossChartData(withAux(false), 0, true)[4]).toEqual([0.011, null]);
  });

  it("leaves the columns as they were on a run without one", () => {
    expect(lossChartData(series(), 0, false)).toHaveLength(4);
  });

  it("counts among the plotted points, and the chart shows them", () => {
    act(() => root.render(<LossChart series={withAux(false)} />));
    const chart = container.querySelector('[data-testid="loss-chart"]');
    expect(chart?.getAttribute("data-points")).toBe("4");
    expect(container.querySelector(".runs-chart-empty")).toBeNull();
  });
});

// The loss chart: training loss (smoothed, and raw faint), validation loss, a mixture of
// experts' load-balancing loss (aux_loss) when the run reports it, and validation accuracy
// on a right axis (0..1) when the run reports it. One uPlot instance, fed with
// setData as the run streams; made again only when its axes change (log scale, accuracy
// appearing, theme).

import "uplot/dist/uPlot.min.css";
import "./runs.css";

import { useEffect, useId, useMemo, useRef, useState } from "react";
import uPlot from "uplot";

import type { NonFinite } from "../api/types";
import { alignSeries, ema, nonFinitePoints, type Series } from "./series";
import { useRuns } from "./store";
import { cssVar, useThemeVersion } from "./theme";

export interface LossChartProps {
  /** metric series by name; default: the open run's */
  series?: Record<string, Series>;
  /** fewer controls, for the side of the drawer */
  compact?: boolean;
}

const SMOOTHING_KEY = "shipyard.runs.smoothing";
const LOG_KEY = "shipyard.runs.logScale";

function stored<T>(key: string, parse: (raw: string) => T, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : parse(raw);
  } catch {
    return fallback;
  }
}

function remember(key: string, value: string) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode: not remembered
  }
}

/** The number of metric points the chart plots (train loss, val loss, aux loss, val accuracy). */
export function plottedPoints(series: Record<string, Series>): number {
  return (series.train_loss?.steps.length ?? 0) + (series.val_loss?.steps.length ?? 0)
    + (series.aux_loss?.steps.length ?? 0) + (series.val_accuracy?.steps.length ?? 0);
}

/**
 * The chart's columns: step, train loss raw, train loss smoothed, val loss, then the aux
 * loss (what a mixture of experts adds to the training loss; train loss is without it) and
 * val accuracy, each when there is any. On a log scale, losses at or below 0 become gaps.
 */
export function lossChartData(series: Record<string, Series>, smoothing: number, log: boolean): uPlot.AlignedData {
  const train = series.train_loss, val = series.val_loss, aux = series.aux_loss, acc = series.val_accuracy;
  const smoothed: Series | undefined = train && {
    steps: train.steps,
    values: ema(train.values, smoothing).map((v) => (v === null ? NaN : v)),
  };
  const [x, raw, smooth, valLoss, auxLoss, accuracy] = alignSeries([train, smoothed, val, aux, acc]);
  const positive = (col: (number | null)[]) => (log ? col.map((v) => (v !== null && v > 0 ? v : null)) : col);
  const columns = [x, positive(raw), positive(smooth), positive(valLoss)];
  if (aux?.steps.length) columns.push(positive(auxLoss));
  if (acc?.steps.length) columns.push(accuracy);
  return columns as uPlot.AlignedData;
}

const KIND_WORDS: Record<NonFinite, string> = { nan: "NaN", inf: "infinite", "-inf": "minus infinite" };
const LOSSES: [string, string][] = [["train_loss", "train loss"], ["val_loss", "val loss"]];

/**
 * Where the losses were not finite numbers (a diverged run): the steps, to mark on the
 * chart, and a sentence per loss for the notice under it. The chart draws them as gaps.
 */
export function nonFiniteNotice(series: Record<string, Series>): { steps: number[]; sentences: string[] } {
  const steps = new Set<number>();
  const sentences: string[] = [];
  for (const [name, label] of LOSSES) {
    const points = nonFinitePoints(series[name]);
    if (!points.length) continue;
    for (const p of points) steps.add(p.step);
    const first = points[0];
    const more = points.length > 1 ? ` (${points.length} points in all)` : "";
    sentences.push(`${label} was ${KIND_WORDS[first.kind]} at step ${first.step}${more}: a gap, marked in red`);
  }
  return { steps: [...steps].sort((a, b) => a - b), sentences };
}

let canvasWorks: boolean | null = null;

/** Whether this page can draw on a canvas (not so in a DOM without one, like tests). */
export function canDraw(): boolean {
  if (canvasWorks === null) {
    try {
      canvasWorks = !!document.createElement("canvas").getContext("2d");
    } catch {
      canvasWorks = false;
    }
  }
  return canvasWorks;
}

const fmtLoss = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4);
const fmtTick = (v: number | null) => (v === null || !Number.isFinite(v) ? "" : String(Number(v.toPrecision(3))));
const fmtAcc = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(1)}%`;

export function LossChart({ series: given, compact = false }: LossChartProps) {
  const storeSeries = useRuns((s) => s.derived.series);
  const loading = useRuns((s) => s.eventsLoading) && !given;
  const series = given ?? storeSeries;
  const [log, setLog] = useState(() => stored(LOG_KEY, (r) => r === "1", false));
  const [smoothing, setSmoothing] = useState(() => stored(SMOOTHING_KEY, Number, 0.6));
  const theme = useThemeVersion();
  const wrapRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<HTMLDivElement>(null);
  const chartRef = useRef<uPlot | null>(null);
  const zoomed = useRef(false);
  const id = useId();

  const withAcc = !!series.val_accuracy?.steps.length;
  const withAux = !!series.aux_loss?.steps.length;
  const points = plottedPoints(series);
  const data = useMemo(() => lossChartData(series, smoothing, log), [series, smoothing, log]);
  const dataRef = useRef(data);
  dataRef.current = data;
  const broken = useMemo(() => nonFiniteNotice(series), [series]);
  const brokenRef = useRef(broken.steps);
  brokenRef.current = broken.steps;

  // Make the chart; again only when its axes change.
  useEffect(() => {
    const plot = plotRef.current, wrap = wrapRef.current;
    if (!plot || !wrap || !canDraw()) return;
    const fg = cssVar(wrap, "--muted", "#888");
    const line = cssVar(wrap, "--line", "rgba(128,128,128,0.25)");
    const colours = {
      bad: cssVar(wrap, "--error", "#dc2626"),
      train: cssVar(wrap, "--run-train", "#3b6fd8"),
      val: cssVar(wrap, "--run-val", "#c0568f"),
      acc: cssVar(wrap, "--run-acc", "#2a9d8f"),
      aux: cssVar(wrap, "--run-aux", "#b45309"),
    };
    const font = "11px system-ui, sans-serif";
    const axis = { stroke: fg, font, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1, size: 4 } };
    const opts: uPlot.Options = {
      width: Math.max(plot.clientWidth, 100),
      height: Math.max(plot.clientHeight, 80),
      scales: {
        x: { time: false },
        y: log ? { distr: 3, log: 10 } : { auto: true },
        acc: { auto: false, range: [0, 1] },
      },
      axes: [
        { ...axis, size: 26 },
        { ...axis, scale: "y", size: 44, values: (_u, vals) => vals.map((v) => fmtTick(v)) },
        ...(withAcc ? [{
          ...axis, scale: "acc", side: 1, size: 40, grid: { show: false },
          values: (_u: uPlot, vals: number[]) => vals.map((v) => `${Math.round(v * 100)}%`),
        }] : []),
      ],
      series: [
        { label: "step", value: (_u, v) => (v === null || v === undefined ? "–" : String(v)) },
        {
          label: "train (raw)", scale: "y", stroke: colours.train, alpha: 0.28, width: 1,
          points: { show: false }, value: (_u, v) => fmtLoss(v),
        },
        {
          label: "train loss", scale: "y", stroke: colours.train, width: 1.6, spanGaps: true,
          points: { show: false }, value: (_u, v) => fmtLoss(v),
        },
        {
          label: "val loss", scale: "y", stroke: colours.val, width: 1.6, spanGaps: true,
          points: { show: true, size: 4, fill: colours.val }, value: (_u, v) => fmtLoss(v),
        },
        ...(withAux ? [{
          label: "aux loss", scale: "y", stroke: colours.aux, width: 1.3, dash: [2, 2], spanGaps: true,
          points: { show: false }, value: (_u: uPlot, v: number | null) => fmtLoss(v),
        }] : []),
        ...(withAcc ? [{
          label: "val accuracy", scale: "acc", stroke: colours.acc, width: 1.3, dash: [5, 3], spanGaps: true,
          points: { show: true, size: 3, fill: colours.acc }, value: (_u: uPlot, v: number | null) => fmtAcc(v),
        }] : []),
      ],
      cursor: { drag: { x: true, y: false }, points: { size: 5 } },
      legend: { live: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width > 2) zoomed.current = true;
        }],
        // A dashed red line at each step whose loss was not a number: the gap is explained.
        draw: [(u) => {
          const { ctx, bbox } = u;
          ctx.save();
          ctx.strokeStyle = colours.bad;
          ctx.setLineDash([4, 3]);
          ctx.lineWidth = 1;
          for (const step of brokenRef.current) {
            const x = Math.round(u.valToPos(step, "x", true));
            if (x < bbox.left || x > bbox.left + bbox.width) continue;
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
    let chart: uPlot | null = null;
    try {
      chart = new uPlot(opts, dataRef.current, plot);
    } catch {
      plot.replaceChildren(); // the chart could not be drawn; the numbers still show
      return;
    }
    chartRef.current = chart;
    const unzoom = () => {
      zoomed.current = false;
    };
    chart.over.addEventListener("dblclick", unzoom);
    const fit = () => {
      const legend = chart!.root.querySelector<HTMLElement>(".u-legend");
      const width = Math.max(Math.floor(plot.clientWidth), 100);
      const height = Math.max(Math.floor(plot.clientHeight - (legend?.offsetHeight ?? 0)), 60);
      if (width !== chart!.width || height !== chart!.height) chart!.setSize({ width, height });
    };
    fit();
    const observer = typeof ResizeObserver === "function" ? new ResizeObserver(fit) : null;
    observer?.observe(plot);
    return () => {
      observer?.disconnect();
      chart!.over.removeEventListener("dblclick", unzoom);
      chart!.destroy();
      chartRef.current = null;
    };
  }, [log, withAcc, withAux, theme]);

  // Keep up with the stream.
  useEffect(() => {
    chartRef.current?.setData(data, !zoomed.current);
  }, [data]);

  return (
    <div
      ref={wrapRef}
      className={`runs-chart${compact ? " runs-chart-compact" : ""}`}
      data-testid="loss-chart"
      data-points={points}
    >
      <div className="runs-chart-tools">
        <label className="runs-inline" title="Loss on a logarithmic scale">
          <input
            type="checkbox"
            checked={log}
            onChange={(e) => {
              setLog(e.target.checked);
              remember(LOG_KEY, e.target.checked ? "1" : "0");
            }}
          />
          log scale
        </label>
        <label className="runs-inline" htmlFor={`${id}-smooth`} title="Exponential moving average of the training loss; the raw loss stays faint behind it">
          smoothing
        </label>
        <input
          id={`${id}-smooth`}
          className="runs-smoothing"
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={smoothing}
          onChange={(e) => {
            const v = Number(e.target.value);
            setSmoothing(v);
            remember(SMOOTHING_KEY, String(v));
          }}
        />
        <output className="runs-num" htmlFor={`${id}-smooth`}>{smoothing.toFixed(2)}</output>
        {!compact && <span className="runs-muted runs-hint">drag to zoom · double-click to reset</span>}
      </div>
      <div className="runs-chart-body">
        <div ref={plotRef} className="runs-chart-plot" />
        {points === 0 && <div className="runs-chart-empty">{loading ? "Loading…" : "No metrics yet"}</div>}
      </div>
      {broken.sentences.length > 0 && (
        <p className="runs-chart-nonfinite" role="status" data-testid="nonfinite-notice">
          {broken.sentences.join("; ")}
        </p>
      )}
    </div>
  );
}

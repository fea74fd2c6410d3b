// Attention maps of one module: a small heatmap per head (or one head large), a slider over
// the run's snapshots, and the tiny map the canvas shows beside an attention node.
// Rows are query positions, columns key positions; each pixel is one weight, painted at
// native resolution and scaled by CSS without smoothing.

import "./runs.css";

import { memo, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";

import {
  cellLabel, decodeAttention, describeCell, fitMapWidth, labelledCells, MAP_HINT, paintHead, type AttentionMap,
} from "./attentionData";
import type { AttentionEvent } from "../api/types";
import { useRuns } from "./store";
import { rampFor, useThemeVersion } from "./theme";

const NONE: AttentionEvent[] = [];

function decode(event: AttentionEvent | undefined): AttentionMap | Error | null {
  if (!event) return null;
  try {
    return decodeAttention(event);
  } catch (error) {
    return error as Error;
  }
}

interface HeadCanvasProps {
  map: AttentionMap;
  head: number;
  /** CSS width in px; the height follows rows / cols */
  size: number;
  label?: string;
  onHover?(cell: { row: number; col: number } | null): void;
}

const HeadCanvas = memo(function HeadCanvas({ map, head, size, label, onHover }: HeadCanvasProps) {
  const ref = useRef<HTMLCanvasElement>(null);
  const theme = useThemeVersion();
  useEffect(() => {
    const canvas = ref.current;
    if (canvas) paintHead(canvas, map, head, rampFor(canvas));
  }, [map, head, theme]);
  const cell = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const rect = e.currentTarget.getBoundingClientRect();
    if (!rect.width || !rect.height) return null;
    const col = Math.floor(((e.clientX - rect.left) / rect.width) * map.cols);
    const row = Math.floor(((e.clientY - rect.top) / rect.height) * map.rows);
    return row >= 0 && row < map.rows && col >= 0 && col < map.cols ? { row, col } : null;
  };
  return (
    <canvas
      ref={ref}
      className="attn-canvas"
      width={map.cols}
      height={map.rows}
      style={{ width: size, height: Math.round((size * map.rows) / map.cols) }}
      role="img"
      aria-label={label ?? `head ${head}`}
      onMouseMove={onHover && ((e) => onHover(cell(e)))}
      onMouseLeave={onHover && (() => onHover(null))}
    />
  );
});

const LABEL_CHARS = 6; // longer labels (a pooled cell's) are cut, with an ellipsis

/** Each cell's label on the axes, cut to LABEL_CHARS; null when the map has no tokens. */
function useAxisLabels(map: AttentionMap): string[] | null {
  return useMemo(() => {
    if (!map.tokens) return null;
    return Array.from({ length: map.rows }, (_, i) => {
      const label = cellLabel(map, i) ?? "";
      return label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label;
    });
  }, [map]);
}

/**
 * A head's map with the example's tokens on its axes: keys above, queries on the left.
 * Every cell is labelled when the labels fit beside each other, else every n-th; a map
 * without tokens is the bare canvas.
 */
function LabelledHead(props: HeadCanvasProps) {
  const { map, size } = props;
  const labels = useAxisLabels(map);
  if (!labels) return <HeadCanvas {...props} />;
  const height = Math.round((size * map.rows) / map.cols);
  const chars = Math.max(1, ...labels.map((l) => l.length));
  const keys = labelledCells(map.cols, size, chars);
  const queries = labelledCells(map.rows, height, 1);
  return (
    <div className="attn-axes">
      <span aria-hidden="true" />
      <div className="attn-keys" style={{ width: size }} data-testid="attention-keys" aria-label="keys">
        {keys.map((i) => (
          <span key={i} style={{ left: ((i + 0.5) * size) / map.cols }}>{labels[i]}</span>
        ))}
      </div>
      <div className="attn-queries" style={{ height, width: `calc(${chars}ch + 4px)` }} data-testid="attention-queries" aria-label="queries">
        {queries.map((i) => (
          <span key={i} style={{ top: ((i + 0.5) * height) / map.rows }}>{labels[i]}</span>
        ))}
      </div>
      <HeadCanvas {...props} />
    </div>
  );
}

function Legend() {
  useThemeVersion();
  const ramp = rampFor(typeof document === "undefined" ? null : document.documentElement);
  const stops = [0, 64, 128, 192, 255].map((i) => `rgb(${ramp[i * 4]} ${ramp[i * 4 + 1]} ${ramp[i * 4 + 2]}) ${((i / 255) * 100).toFixed(0)}%`);
  return (
    <span
      className="attn-legend"
      title="Colour: attention weight, on a square-root scale so that spread-out rows still show (the middle is 0.25)"
    >
      <span>0</span>
      <span className="attn-legend-bar" aria-hidden="true" style={{ background: `linear-gradient(to right, ${stops.join(", ")})` }} />
      <span>1</span>
    </span>
  );
}

const LARGE = 288;
const READOUT_WIDTH = 200;
const AXIS_ROOM = 14; // px the key labels take above a map

/**
 * The width a large map of rows × cols gets: what fits below its top in the drawer's
 * scrolling panel (`.runs-main`), so that it is never cut off at the drawer's bottom.
 * Measured again when the drawer is resized.
 */
function useFittedWidth(ref: React.RefObject<HTMLElement | null>, rows: number, cols: number, shown: boolean,
  labelled: boolean): number {
  const [width, setWidth] = useState(LARGE);
  useLayoutEffect(() => {
    const el = ref.current;
    const box = el?.closest<HTMLElement>(".runs-main");
    if (!el || !box) return;
    const measure = () => {
      const style = getComputedStyle(box);
      const top = el.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
      // Room for the tokens on the axes, when there are: keys above, queries on the left.
      const height = box.clientHeight - top - (parseFloat(style.paddingBottom) || 0) - 4 - (labelled ? AXIS_ROOM : 0);
      const room = el.clientWidth - READOUT_WIDTH - (labelled ? 4 * AXIS_ROOM : 0);
      // The smallest map with its axes is no taller than the smallest bare one (48 px).
      setWidth(fitMapWidth({ height, width: room > 0 ? room : LARGE }, rows, cols, LARGE,
        labelled ? 48 - AXIS_ROOM : 48));
    };
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(box);
    return () => observer.disconnect();
  }, [ref, rows, cols, shown, labelled]);
  return width;
}

export interface AttentionProps {
  /** the module's path, e.g. "blocks.0.attn" */
  path: string;
}

/** The attention maps of one module, over the open run's snapshots. */
export function Attention({ path }: AttentionProps) {
  const snapshots = useRuns((s) => s.derived.attention[path]) ?? NONE;
  const [picked, setPicked] = useState<number | null>(null); // null: follow the newest
  const [head, setHead] = useState<number | "all">("all");
  const [hover, setHover] = useState<{ row: number; col: number } | null>(null);

  const count = snapshots.length;
  const index = picked === null ? count - 1 : Math.min(picked, count - 1);
  const event = snapshots[index];
  const map = useMemo(() => decode(event), [event]);
  const heads = map && !(map instanceof Error) ? map.heads : 0;
  const shownHead = head === "all" || head < heads ? head : "all";
  const largeRef = useRef<HTMLDivElement>(null);
  const shown = map && !(map instanceof Error) ? map : null;
  const largeWidth = useFittedWidth(largeRef, shown?.rows ?? 1, shown?.cols ?? 1, shownHead !== "all", !!shown?.tokens);

  return (
    <div className="attn" data-testid="attention-map" data-node={path}>
      {count === 0 ? (
        <p className="runs-empty">
          No attention maps of <code>{path}</code> yet. A run takes one every
          {" "}<code>attention_interval</code> steps and at its last step.
        </p>
      ) : (
        <>
          <div className="attn-tools">
            <div className="runs-segmented" role="radiogroup" aria-label="Heads">
              <button type="button" role="radio" aria-checked={shownHead === "all"} onClick={() => setHead("all")}>
                all
              </button>
              {Array.from({ length: heads }, (_, h) => (
                <button key={h} type="button" role="radio" aria-checked={shownHead === h} onClick={() => setHead(h)}>
                  {h}
                </button>
              ))}
            </div>
            <label className="attn-slider">
              <span className="runs-muted">snapshot</span>
              <input
                type="range"
                min={0}
                max={Math.max(count - 1, 0)}
                step={1}
                value={index}
                disabled={count < 2}
                aria-valuetext={`step ${event?.step ?? 0}`}
                onChange={(e) => {
                  const v = Number(e.target.value);
                  setPicked(v >= count - 1 ? null : v);
                }}
              />
            </label>
            <span className="runs-num">step {event?.step ?? 0}</span>
            <span className="runs-muted runs-num">
              {index + 1}/{count}{picked === null ? " · newest" : ""}
            </span>
            <Legend />
          </div>
          {map instanceof Error ? (
            <p className="runs-error">{map.message}</p>
          ) : map && shownHead === "all" ? (
            <div className="attn-grid">
              {Array.from({ length: heads }, (_, h) => (
                <figure key={h} className="attn-head">
                  <button type="button" className="attn-pick" title={`Show head ${h} large`} onClick={() => setHead(h)}>
                    <LabelledHead map={map} head={h} size={heads > 8 ? 96 : 128} label={`${path} head ${h} at step ${map.step}`} />
                  </button>
                  <figcaption>head {h}</figcaption>
                </figure>
              ))}
            </div>
          ) : map ? (
            <div className="attn-large" ref={largeRef}>
              <LabelledHead
                map={map}
                head={shownHead as number}
                size={largeWidth}
                label={`${path} head ${shownHead} at step ${map.step}`}
                onHover={setHover}
              />
              <div className="attn-readout runs-num" aria-live="off" data-testid="attention-readout">
                {hover ? describeCell(map, shownHead as number, hover.row, hover.col) : MAP_HINT}
              </div>
            </div>
          ) : null}
        </>
      )}
    </div>
  );
}

/**
 * The tiny heatmap beside an attention node on the canvas: head 0 of the newest snapshot
 * of `path`. Nothing until the open run has one. A click opens the drawer's attention tab
 * on that module.
 */
export const AttentionMini = memo(function AttentionMini({ path }: { path: string }) {
  const latest = useRuns((s) => {
    const list = s.derived.attention[path];
    return list ? list[list.length - 1] : undefined;
  });
  const showAttention = useRuns((s) => s.showAttention);
  const map = useMemo(() => decode(latest), [latest]);
  if (!map || map instanceof Error) return null;
  return (
    <button
      type="button"
      className="attn-mini nodrag nopan"
      title={`Attention of ${path}, head 0, step ${map.step}: open in the runs drawer`}
      onClick={(e) => {
        e.stopPropagation();
        showAttention(path);
      }}
    >
      <HeadCanvas map={map} head={0} size={40} label={`${path} attention, head 0`} />
    </button>
  );
});

// Attention snapshots: decoding (docs/runs.md "attention") and painting them as heatmaps.

import type { AttentionEvent } from "../api/types";

export interface AttentionMap {
  node: string;
  step: number;
  heads: number;
  /** query positions */
  rows: number;
  /** key positions */
  cols: number;
  /** weights[(head * rows + row) * cols + col] */
  weights: Float32Array;
  /**
   * The example's tokens, one per position (characters of a text, ids of a token task), on
   * both axes; absent on older events and on maps over anything else. More than `rows`
   * when the map was pooled: see `cellSpan`.
   */
  tokens?: readonly string[];
}

const decoded = new WeakMap<AttentionEvent, AttentionMap>();

function base64Bytes(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The weights of an attention event: `byte / 255 × scale[head][row]`, head by head, row by
 * row. Decoded once per event (kept while the event is). Throws when the data does not
 * hold heads × rows × cols bytes.
 */
export function decodeAttention(event: AttentionEvent): AttentionMap {
  const cached = decoded.get(event);
  if (cached) return cached;
  const { heads, rows, cols } = event;
  const bytes = base64Bytes(event.data);
  if (bytes.length !== heads * rows * cols) {
    throw new Error(`attention map of ${event.node} at step ${event.step} has ${bytes.length} ` +
      `bytes; expected ${heads} × ${rows} × ${cols}`);
  }
  const weights = new Float32Array(bytes.length);
  for (let h = 0; h < heads; h++) {
    const scales = event.scale[h] ?? [];
    for (let r = 0; r < rows; r++) {
      const k = (scales[r] ?? 0) / 255;
      const base = (h * rows + r) * cols;
      for (let c = 0; c < cols; c++) weights[base + c] = bytes[base + c] * k;
    }
  }
  const map: AttentionMap = { node: event.node, step: event.step, heads, rows, cols, weights };
  // Labels only for a square map over the example's positions (or 64 pooled from more).
  const tokens = event.tokens;
  if (tokens && tokens.length > 0 && rows === cols && tokens.length >= rows &&
      (tokens.length === rows || rows === 64)) {
    map.tokens = tokens;
  }
  decoded.set(event, map);
  return map;
}

// --- colour ---------------------------------------------------------------------------

function oklchToSrgb(l: number, c: number, hDeg: number): [number, number, number] {
  const h = (hDeg * Math.PI) / 180;
  const a = c * Math.cos(h), b = c * Math.sin(h);
  const l_ = l + 0.3963377774 * a + 0.2158037573 * b;
  const m_ = l - 0.1055613458 * a - 0.0638541728 * b;
  const s_ = l - 0.0894841775 * a - 1.291485548 * b;
  const L = l_ ** 3, M = m_ ** 3, S = s_ ** 3;
  const lin = [
    4.0767416621 * L - 3.3077115913 * M + 0.2309699292 * S,
    -1.2684380046 * L + 2.6097574011 * M - 0.3413193965 * S,
    -0.0041960863 * L - 0.7034186147 * M + 1.707614701 * S,
  ];
  return lin.map((x) => (x <= 0.0031308 ? 12.92 * x : 1.055 * Math.pow(x, 1 / 2.4) - 0.055)) as [number, number, number];
}

function inGamut(rgb: number[]): boolean {
  return rgb.every((v) => v >= -1e-4 && v <= 1 + 1e-4);
}

/**
 * A sequential single-hue ramp, even in perceived lightness (OKLCH): 256 RGBA entries from
 * "no attention" to "all of it". On a light background it runs from near-white to deep
 * blue, on a dark one from near-black to pale blue, so weight always reads as contrast
 * with the page. Chroma is cut where blue leaves the sRGB gamut, never lightness.
 */
export function attentionRamp(dark: boolean, hue = 255): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    const l = dark ? 0.2 + 0.74 * t : 0.98 - 0.66 * t;
    let c = dark ? 0.02 + 0.12 * Math.sin(Math.PI * Math.min(t * 0.8, 1)) : 0.01 + 0.15 * t;
    let rgb = oklchToSrgb(l, c, hue);
    for (let k = 0; k < 24 && !inGamut(rgb); k++) {
      c *= 0.85;
      rgb = oklchToSrgb(l, c, hue);
    }
    lut[i * 4] = Math.round(Math.min(Math.max(rgb[0], 0), 1) * 255);
    lut[i * 4 + 1] = Math.round(Math.min(Math.max(rgb[1], 0), 1) * 255);
    lut[i * 4 + 2] = Math.round(Math.min(Math.max(rgb[2], 0), 1) * 255);
    lut[i * 4 + 3] = 255;
  }
  return lut;
}

/**
 * The ramp index of a weight. Weights are mapped through a square root so that the spread
 * of a diffuse row (1/64 each) still shows beside a sharp one; the legend says so.
 */
export function rampIndex(weight: number): number {
  if (!(weight > 0)) return 0;
  return Math.min(255, Math.round(Math.sqrt(Math.min(weight, 1)) * 255));
}

/** One head as RGBA pixels, cols × rows (one pixel per key × query). */
export function headPixels(map: AttentionMap, head: number, ramp: Uint8ClampedArray): Uint8ClampedArray {
  const { rows, cols, weights } = map;
  const out = new Uint8ClampedArray(rows * cols * 4);
  const base = head * rows * cols;
  for (let i = 0; i < rows * cols; i++) {
    const k = rampIndex(weights[base + i]) * 4;
    out[i * 4] = ramp[k];
    out[i * 4 + 1] = ramp[k + 1];
    out[i * 4 + 2] = ramp[k + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** Paints one head onto a canvas at native resolution (CSS scales it, pixelated). */
export function paintHead(canvas: HTMLCanvasElement, map: AttentionMap, head: number, ramp: Uint8ClampedArray): void {
  if (canvas.width !== map.cols) canvas.width = map.cols;
  if (canvas.height !== map.rows) canvas.height = map.rows;
  const ctx = canvas.getContext?.("2d");
  if (!ctx || typeof ImageData === "undefined") return; // no canvas (tests, old browsers)
  const image = new ImageData(map.cols, map.rows);
  image.data.set(headPixels(map, head, ramp));
  ctx.putImageData(image, 0, 0);
}

/** Whether the page behind `el` is dark: from the resolved --bg, else the system setting. */
export function isDarkBackground(el: Element | null): boolean {
  if (el && typeof getComputedStyle === "function") {
    const value = getComputedStyle(el).getPropertyValue("--bg").trim();
    const rgb = parseRgb(value);
    if (rgb) return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 128;
  }
  return typeof matchMedia === "function" && matchMedia("(prefers-color-scheme: dark)").matches;
}

export function parseRgb(value: string): [number, number, number] | null {
  const hex = value.match(/^#([0-9a-f]{3}|[0-9a-f]{6})$/i);
  if (hex) {
    const h = hex[1].length === 3 ? hex[1].replace(/./g, (x) => x + x) : hex[1];
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
  }
  const rgb = value.match(/^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  return null;
}

// --- words and sizes ------------------------------------------------------------------

// --- tokens on the axes -----------------------------------------------------------------

const VISIBLE: Record<string, string> = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍" };

/** A token as it can be seen: whitespace as a sign (␣ space, ↵ newline, ⇥ tab, ␍ return). */
export function showToken(token: string): string {
  return token.replace(/[ \n\t\r]/g, (c) => VISIBLE[c]).replace(/[\u0000-\u001f\u007f]/g, "·");
}

/**
 * The example's positions that cell `index` of `cells` covers, first and last: the
 * position itself, or for a pooled map the block it averages (as the pooling cuts them).
 */
export function cellSpan(positions: number, cells: number, index: number): [number, number] {
  if (positions <= cells) return [index, index];
  return [Math.floor((index * positions) / cells), Math.ceil(((index + 1) * positions) / cells) - 1];
}

/**
 * The label of cell `index` on a map's axes: its token, shown visibly; for a pooled map the
 * tokens of its span, joined (characters run together, ids with a space). Null without tokens.
 */
export function cellLabel(map: AttentionMap, index: number): string | null {
  const tokens = map.tokens;
  if (!tokens) return null;
  const [first, last] = cellSpan(tokens.length, map.rows, index);
  const joiner = tokens.every((t) => t.length === 1) ? "" : " ";
  return tokens.slice(first, last + 1).map(showToken).join(joiner);
}

/** "position 12" or, for a pooled map's cell, "positions 12–13". */
function positionWords(map: AttentionMap, index: number): string {
  const [first, last] = cellSpan(map.tokens?.length ?? map.rows, map.rows, index);
  return first === last ? `position ${first}` : `positions ${first}–${last}`;
}

/**
 * Which cells of an axis of `cells` cells, `size` px long, get a label: every one when
 * labels of `chars` characters fit side by side, else every n-th (from 0).
 */
export function labelledCells(cells: number, size: number, chars = 1): number[] {
  const need = chars * 6 + 4; // px a label needs: 10px monospace is about 6px a character
  const step = Math.max(1, Math.ceil(need / Math.max(size / Math.max(cells, 1), 1e-6)));
  const out: number[] = [];
  for (let i = 0; i < cells; i += step) out.push(i);
  return out;
}

/**
 * What one cell of a head's map means, for a learner: with the example's tokens, "position
 * 12 ('e') attends to position 7 ('h') with 0.41"; without them, positions only.
 */
export function describeCell(map: AttentionMap, head: number, row: number, col: number): string {
  const w = map.weights[(head * map.rows + row) * map.cols + col];
  if (map.tokens) {
    const verb = positionWords(map, row).startsWith("positions") ? "attend" : "attends";
    return `${positionWords(map, row)} ('${cellLabel(map, row)}') ${verb} to ` +
      `${positionWords(map, col)} ('${cellLabel(map, col)}') with ${w.toFixed(2)}`;
  }
  return `position ${row} attends to position ${col} with weight ${w.toFixed(3)} (head ${head})`;
}

/** The hint under a large map when no cell is hovered. */
export const MAP_HINT =
  "each row is one position of the example; the colours show how much it attends to each position (columns); a row adds up to 1";

/**
 * The CSS width of a large map that fits `height` × `width` px of room, keeping its
 * rows : cols proportion, at most `max` and at least `min` px wide.
 */
export function fitMapWidth(room: { height: number; width: number }, rows: number, cols: number,
  max = 288, min = 48): number {
  const byHeight = rows > 0 ? (room.height * cols) / rows : max;
  return Math.round(Math.max(min, Math.min(max, byHeight, room.width)));
}

interface DocLike {
  nodes: readonly { type: string; graph?: DocLike | null }[];
}

interface ReportNodesLike {
  [id: string]: { attention?: boolean; body?: { nodes?: ReportNodesLike } };
}

/**
 * Whether a graph (or any Repeat inside it) has a node whose attention a run shows: a
 * MultiHeadAttention (known from the document, before any report), or any node the
 * server's report marks `attention` (a Softmax over square scores built from parts).
 */
export function hasAttentionModules(doc: DocLike | null | undefined,
  report?: { nodes: ReportNodesLike } | null): boolean {
  return hasBlock(doc) || (!!report && reportShows(report.nodes));
}

function hasBlock(doc: DocLike | null | undefined): boolean {
  if (!doc) return false;
  return doc.nodes.some((n) => n.type === "MultiHeadAttention" || hasBlock(n.graph));
}

function reportShows(nodes: ReportNodesLike | undefined): boolean {
  return !!nodes && Object.values(nodes).some((n) => n.attention || reportShows(n.body?.nodes));
}

/**
 * Why a run shows no attention maps yet, in words: `null` when the graph has none, else
 * waiting for the first snapshot, or snapshots are off.
 */
export function noAttentionYet(opts: { hasAttention: boolean; interval: number | null; total: number; ended: boolean }): string {
  const { hasAttention, interval, total, ended } = opts;
  if (!hasAttention) {
    return "This model has no attention modules (MultiHeadAttention blocks, or a Softmax over square [T, T] scores), so its runs take no attention maps.";
  }
  if (interval === 0) {
    return "Attention snapshots are off for this run: its attention interval is 0. " +
      "Start a run with an attention interval above 0 (under Advanced in the Run tab, or leave it empty for the default) to see the maps.";
  }
  const first = interval ? Math.min(interval, total || interval) : null;
  if (ended) {
    return first
      ? `This run ended before its first attention snapshot (at step ${first}).`
      : "This run recorded no attention maps.";
  }
  return first ? `Waiting for the first snapshot (at step ${first}).` : "Waiting for the first snapshot.";
}

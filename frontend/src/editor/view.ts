// Where the canvas looks when it opens, when a Repeat is entered, on "fit view" and after
// auto-layout: the whole graph in the part of the canvas no panel covers, unless that
// would make a block's label smaller than 11 px on screen; then the graph's top (its Input)
// at the smallest readable zoom, and the rest a scroll away.
import { type ReactFlowInstance, getNodesBounds } from "@xyflow/react";

import { useEditor } from "../store/editor";
import type { BlockNodeType, ShapeEdgeType } from "./flow";
import { autoLayout } from "./layout";

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Viewport {
  x: number;
  y: number;
  zoom: number;
}

/** Something drawn over or beside the canvas, and the side of the canvas it takes. */
export interface Cover {
  rect: Rect;
  side: "left" | "right" | "top" | "bottom";
}

/** The smallest size on screen, in CSS pixels, of a block's label at the opening zoom. */
export const MIN_TEXT_PX = 11;
/** Room between the graph and the edges of what is visible, in screen pixels. */
export const FIT_PADDING = 24;
/** Fitting never zooms in past this: a two-block graph should not fill the screen. */
export const FIT_MAX_ZOOM = 1.1;

/** The part of `canvas` that no cover hides: each cover that overlaps it cuts it on the
 * side it takes (the palette from the left, the run drawer from the bottom, …). */
export function visibleRect(canvas: Rect, covers: Cover[]): Rect {
  let left = canvas.x;
  let top = canvas.y;
  let right = canvas.x + canvas.width;
  let bottom = canvas.y + canvas.height;
  for (const { rect, side } of covers) {
    const overlaps = rect.width > 0 && rect.height > 0
      && rect.x < right && rect.x + rect.width > left && rect.y < bottom && rect.y + rect.height > top;
    if (!overlaps) continue;
    if (side === "left") left = Math.max(left, rect.x + rect.width);
    else if (side === "right") right = Math.min(right, rect.x);
    else if (side === "top") top = Math.max(top, rect.y + rect.height);
    else bottom = Math.min(bottom, rect.y);
  }
  return { x: left, y: top, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
}

/** The smallest zoom at which a label of `labelPx` CSS pixels is `minTextPx` on screen. */
export function readableZoom(labelPx: number, minTextPx: number = MIN_TEXT_PX): number {
  return minTextPx / labelPx;
}

export interface FitRequest {
  /** The graph's nodes, in flow coordinates. */
  bounds: Rect;
  /** What must be on screen when the whole graph cannot be (the Input), in flow coordinates. */
  anchor: Rect;
  /** The visible part of the canvas, in the canvas's own screen coordinates. */
  visible: Rect;
  minZoom: number;
  maxZoom?: number;
  padding?: number;
}

/** The viewport for a graph: the whole of it, centred in the visible part, when it fits
 * at `minZoom` or more; otherwise `minZoom` with its top at the top of the visible part
 * and, when it is too wide too, the anchor centred across. `fits` says which. */
export function fitViewport(request: FitRequest): Viewport & { fits: boolean } {
  const { bounds, anchor, visible } = request;
  const padding = request.padding ?? FIT_PADDING;
  const maxZoom = request.maxZoom ?? FIT_MAX_ZOOM;
  const minZoom = Math.min(request.minZoom, maxZoom);
  const roomX = Math.max(1, visible.width - 2 * padding);
  const roomY = Math.max(1, visible.height - 2 * padding);
  const whole = Math.min(roomX / Math.max(1, bounds.width), roomY / Math.max(1, bounds.height), maxZoom);
  const centreX = visible.x + visible.width / 2;
  if (whole >= minZoom) {
    return {
      zoom: whole,
      x: centreX - (bounds.x + bounds.width / 2) * whole,
      y: visible.y + visible.height / 2 - (bounds.y + bounds.height / 2) * whole,
      fits: true,
    };
  }
  const zoom = minZoom;
  const wideX = bounds.width * zoom > roomX ? anchor.x + anchor.width / 2 : bounds.x + bounds.width / 2;
  // The top of the graph at the top, unless the anchor sits lower than one screen down.
  const topY = Math.max(bounds.y, anchor.y + anchor.height - roomY / zoom);
  return { zoom, x: centreX - wideX * zoom, y: visible.y + padding - topY * zoom, fits: false };
}

/** The node a view that cannot show everything starts from: the first Input, else the
 * topmost node. */
export function anchorNode(nodes: BlockNodeType[]): BlockNodeType | undefined {
  const input = nodes.find((n) => n.data.node.type === "Input");
  if (input) return input;
  return nodes.reduce<BlockNodeType | undefined>((top, n) => (!top || n.position.y < top.position.y ? n : top), undefined);
}

function intersect(a: Rect, b: Rect): Rect {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  return { x, y, width: Math.max(0, right - x), height: Math.max(0, bottom - y) };
}

const COVERS: [string, Cover["side"]][] = [
  [".palette", "left"], [".inspector", "right"], [".path-panel", "right"], [".topbar", "top"], [".breadcrumbs", "top"],
  [".statusbar", "bottom"], [".run-drawer", "bottom"], [".sql-console", "bottom"],
];

function rectOf(el: Element): Rect {
  const r = el.getBoundingClientRect();
  return { x: r.x, y: r.y, width: r.width, height: r.height };
}

/** The part of React Flow's element (`container`) that is on screen and under no panel,
 * in page coordinates. */
export function visibleOnScreen(container: Element): Rect {
  const onScreen = intersect(rectOf(container), { x: 0, y: 0, width: window.innerWidth, height: window.innerHeight });
  const covers = COVERS.flatMap(([selector, side]) =>
    [...document.querySelectorAll(selector)].map((el) => ({ rect: rectOf(el), side })));
  return visibleRect(onScreen, covers);
}

/** Where a block added without a pointer goes: centred in the visible part of the canvas,
 * in flow coordinates, as the top-left corner of a block of `size`. */
export function visibleCentre(
  flow: { screenToFlowPosition(p: { x: number; y: number }): { x: number; y: number } },
  size: { width: number; height: number },
): [number, number] | null {
  const container = document.querySelector(".react-flow");
  if (!container) return null;
  const visible = visibleOnScreen(container);
  const at = flow.screenToFlowPosition({ x: visible.x + visible.width / 2, y: visible.y + visible.height / 2 });
  return [at.x - size.width / 2, at.y - size.height / 2];
}

/** Fit the canvas as described at the top of this file. `container` is React Flow's
 * element; the label's font size is read from a rendered block, so the CSS is the one
 * place that sets it. Does nothing before the nodes have sizes (measured, or the first
 * ones given for nodes not drawn). */
export function fitCanvas(
  flow: ReactFlowInstance<BlockNodeType, ShapeEdgeType>, container: HTMLElement | null, duration = 0,
): boolean {
  const nodes = flow.getNodes();
  if (!container || nodes.length === 0 || nodes.some((n) => !(n.measured?.width ?? n.initialWidth))) return false;
  const box = rectOf(container);
  const visible = visibleOnScreen(container);
  const label = container.querySelector(".react-flow__node .bn-type");
  const labelPx = label ? parseFloat(getComputedStyle(label).fontSize) : NaN;
  const anchor = anchorNode(nodes)!;
  const viewport = fitViewport({
    bounds: getNodesBounds(nodes),
    anchor: getNodesBounds([anchor]),
    visible: { ...visible, x: visible.x - box.x, y: visible.y - box.y },
    minZoom: readableZoom(Number.isFinite(labelPx) ? labelPx : 13),
  });
  void flow.setViewport({ x: viewport.x, y: viewport.y, zoom: viewport.zoom }, duration ? { duration } : undefined);
  return true;
}

// Fitting waits for the canvas to draw what it is asked to fit (a layout just made, a
// Repeat just entered): the keyboard shortcuts and the buttons ask, the canvas fits.
const fitListeners = new Set<(duration: number) => void>();

/** Ask the canvas to fit its view once it has drawn the current graph. */
export function requestFit(duration = 0): void {
  for (const listener of fitListeners) listener(duration);
}

export function onFitRequest(listener: (duration: number) => void): () => void {
  fitListeners.add(listener);
  return () => fitListeners.delete(listener);
}

/** Lay out the graph at the current scope with the blocks' drawn sizes, then fit. */
export function autoLayoutHere(
  flow: { getNodes(): { id: string; measured?: { width?: number; height?: number } }[] },
): void {
  const state = useEditor.getState();
  if (state.readOnly) return;
  const sizes = new Map(flow.getNodes().flatMap((n) =>
    n.measured?.width && n.measured.height ? [[n.id, { width: n.measured.width, height: n.measured.height }] as const] : []));
  state.edit((doc) => autoLayout(doc, state.scope, state.catalog, sizes));
  requestFit();
}

import { describe, expect, it } from "vitest";

import { type Rect, anchorNode, fitViewport, readableZoom, visibleRect } from "./view";
import type { BlockNodeType } from "./flow";

const CANVAS: Rect = { x: 232, y: 44, width: 896, height: 828 };

describe("the visible part of the canvas", () => {
  it("is the whole canvas when the panels sit beside it", () => {
    const covers = [
      { rect: { x: 0, y: 44, width: 232, height: 828 }, side: "left" as const },
      { rect: { x: 1128, y: 44, width: 312, height: 828 }, side: "right" as const },
      { rect: { x: 0, y: 872, width: 1440, height: 28 }, side: "bottom" as const },
    ];
    expect(visibleRect(CANVAS, covers)).toEqual(CANVAS);
  });

  it("is cut by each panel that lies over it, on that panel's side", () => {
    const covers = [
      { rect: { x: 0, y: 0, width: 300, height: 900 }, side: "left" as const },
      { rect: { x: 1000, y: 0, width: 440, height: 900 }, side: "right" as const },
      { rect: { x: 240, y: 52, width: 500, height: 30 }, side: "top" as const },
      { rect: { x: 0, y: 600, width: 1440, height: 300 }, side: "bottom" as const },
    ];
    expect(visibleRect(CANVAS, covers)).toEqual({ x: 300, y: 82, width: 700, height: 518 });
  });
});

describe("the readable zoom", () => {
  it("makes a label 11 px on screen", () => {
    expect(readableZoom(13)).toBeCloseTo(11 / 13);
    expect(readableZoom(11)).toBe(1);
    expect(readableZoom(12, 9)).toBe(0.75);
  });
});

describe("fitting a graph into the visible part", () => {
  const visible: Rect = { x: 0, y: 0, width: 800, height: 600 };

  it("centres a graph that fits at a readable zoom", () => {
    const bounds = { x: 100, y: 50, width: 400, height: 500 };
    const view = fitViewport({ bounds, anchor: bounds, visible, minZoom: 0.8, padding: 0 });
    expect(view.fits).toBe(true);
    expect(view.zoom).toBeCloseTo(1.1); // 1.2 would fit; fitting stops at 1.1
    // The graph's centre lands on the visible part's centre.
    expect(300 * view.zoom + view.x).toBeCloseTo(400);
    expect(300 * view.zoom + view.y).toBeCloseTo(300);
  });

  it("zooms out as far as the readable zoom, and no further", () => {
    const bounds = { x: 0, y: 0, width: 200, height: 700 };
    const view = fitViewport({ bounds, anchor: bounds, visible, minZoom: 0.8, padding: 0 });
    expect(view.fits).toBe(true);
    expect(view.zoom).toBeCloseTo(600 / 700);
  });

  it("shows the top of a graph too deep for a readable zoom, the Input centred across", () => {
    const bounds = { x: 0, y: 0, width: 1600, height: 2000 };
    const anchor = { x: 1000, y: 0, width: 184, height: 66 };
    const view = fitViewport({ bounds, anchor, visible: { x: 10, y: 20, width: 800, height: 600 }, minZoom: 11 / 13, padding: 24 });
    expect(view.fits).toBe(false);
    expect(view.zoom).toBeCloseTo(11 / 13);
    expect(0 * view.zoom + view.y).toBeCloseTo(20 + 24); // the top of the graph, padded
    expect((1000 + 92) * view.zoom + view.x).toBeCloseTo(10 + 400);
  });

  it("keeps a narrow, deep graph centred across, and an Input low in it on screen", () => {
    const bounds = { x: 0, y: 0, width: 184, height: 3000 };
    const anchor = { x: 0, y: 2000, width: 184, height: 66 };
    const view = fitViewport({ bounds, anchor, visible, minZoom: 1, maxZoom: 1.1, padding: 0 });
    expect(view.fits).toBe(false);
    expect(92 * view.zoom + view.x).toBeCloseTo(400);
    const anchorBottom = (2000 + 66) * view.zoom + view.y;
    expect(anchorBottom).toBeLessThanOrEqual(600 + 1e-9);
    expect(2000 * view.zoom + view.y).toBeGreaterThanOrEqual(0);
  });

  it("never asks for a readable zoom above the largest fitting zoom", () => {
    const bounds = { x: 0, y: 0, width: 5000, height: 5000 };
    const view = fitViewport({ bounds, anchor: bounds, visible, minZoom: 2, maxZoom: 1.1 });
    expect(view.zoom).toBe(1.1);
  });
});

describe("the node a view starts from", () => {
  const n = (id: string, type: string, y: number) =>
    ({ id, position: { x: 0, y }, data: { node: { id, type } } }) as unknown as BlockNodeType;

  it("is the Input, else the topmost node", () => {
    expect(anchorNode([n("a", "Linear", 0), n("x", "Input", 300)])?.id).toBe("x");
    expect(anchorNode([n("a", "Linear", 50), n("b", "ReLU", -20)])?.id).toBe("b");
    expect(anchorNode([])).toBeUndefined();
  });
});

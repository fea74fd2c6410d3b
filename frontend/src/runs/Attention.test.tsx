import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { AttentionEvent } from "../api/types";
import { Attention } from "./Attention";
import { emptyDerived } from "./series";
import { runsStore } from "./store";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const TEXT = "the harbour\n";

/** One head over TEXT: each position attends to itself, except 8 ('o'): 0.41 on 1 ('h'). */
function event(tokens?: string[]): AttentionEvent {
  const n = TEXT.length;
  const bytes = new Uint8Array(n * n);
  const scale = Array.from({ length: n }, (_, r) => (r === 8 ? 0.59 : 1));
  for (let r = 0; r < n; r++) bytes[r * n + r] = 255;
  bytes[8 * n + 8] = 0;
  bytes[8 * n] = 255; // 0.59 on 0 ('t')
  bytes[8 * n + 1] = Math.round((255 * 0.41) / 0.59);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const e: AttentionEvent = {
    type: "attention", seq: 1, step: 20, time: 0, node: "blocks.0.attn", heads: 1, rows: n, cols: n,
    scale: [scale], data: btoa(binary),
  };
  if (tokens) e.tokens = tokens;
  return e;
}

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
  runsStore.setState({ derived: emptyDerived() });
});

function show(e: AttentionEvent) {
  runsStore.setState({ derived: { ...emptyDerived(), attention: { "blocks.0.attn": [e] } } });
  act(() => root.render(<Attention path="blocks.0.attn" />));
}

const labels = (testId: string) =>
  Array.from(container.querySelectorAll(`[data-testid="${testId}"]`)).map((axis) =>
    Array.from(axis.querySelectorAll("span")).map((s) => s.textContent));

function hover(row: number, col: number) {
  const canvas = container.querySelector<HTMLCanvasElement>(".attn-large canvas")!;
  const n = TEXT.length;
  canvas.getBoundingClientRect = () => ({ left: 0, top: 0, width: n * 10, height: n * 10, right: n * 10, bottom: n * 10, x: 0, y: 0, toJSON: () => ({}) });
  act(() => {
    canvas.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: col * 10 + 5, clientY: row * 10 + 5 }));
  });
  return container.querySelector('[data-testid="attention-readout"]')!.textContent;
}

describe("an attention map with the example's tokens", () => {
  it("shows the characters on both axes, whitespace visibly, and says what a cell means", () => {
    show(event([...TEXT]));
    // The grid's small map: 128 px for 12 cells, every label fits.
    expect(labels("attention-keys")).toEqual([[..."the␣harbour↵"]]);
    expect(labels("attention-queries")).toEqual([[..."the␣harbour↵"]]);
    act(() => container.querySelector<HTMLButtonElement>('[title="Show head 0 large"]')!.click());
    expect(labels("attention-keys")[0].join("")).toBe("the␣harbour↵");
    expect(hover(8, 1)).toBe("position 8 ('o') attends to position 1 ('h') with 0.41");
    expect(hover(3, 3)).toBe("position 3 ('␣') attends to position 3 ('␣') with 1.00");
  });

  it("reads as before for an event without tokens", () => {
    show(event());
    expect(labels("attention-keys")).toEqual([]);
    act(() => container.querySelector<HTMLButtonElement>('[title="Show head 0 large"]')!.click());
    expect(hover(8, 1)).toMatch(/^position 8 attends to position 1 with weight 0\.41\d \(head 0\)$/);
  });
});

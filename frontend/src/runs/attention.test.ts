import { describe, expect, it } from "vitest";

import {
  attentionRamp, cellLabel, cellSpan, decodeAttention, describeCell, fitMapWidth, hasAttentionModules, headPixels,
  labelledCells, noAttentionYet, parseRgb, rampIndex, showToken,
} from "./attentionData";
import type { AttentionEvent } from "../api/types";

/** Encodes weights [head][row][col] as the server does (docs/runs.md "attention"). */
function encode(weights: number[][][], node = "blocks.0.attn", step = 50): AttentionEvent {
  const heads = weights.length, rows = weights[0].length, cols = weights[0][0].length;
  const bytes = new Uint8Array(heads * rows * cols);
  const scale = weights.map((head) => head.map((row) => Math.max(...row)));
  weights.forEach((head, h) => head.forEach((row, r) => row.forEach((w, c) => {
    bytes[(h * rows + r) * cols + c] = Math.round((255 * w) / scale[h][r]);
  })));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return { type: "attention", seq: 1, step, time: 0, node, heads, rows, cols, scale, data: btoa(binary) };
}

/** Random causal softmax rows, like a decoder's attention. */
function causal(heads: number, n: number, seed = 1): number[][][] {
  let s = seed;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  return Array.from({ length: heads }, () => Array.from({ length: n }, (_, r) => {
    const logits = Array.from({ length: n }, (_, c) => (c <= r ? rand() * 4 : -Infinity));
    const max = Math.max(...logits);
    const exp = logits.map((l) => Math.exp(l - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    return exp.map((e) => e / sum);
  }));
}

describe("decodeAttention", () => {
  it("gives back weights whose rows sum to 1", () => {
    const weights = causal(4, 16);
    const map = decodeAttention(encode(weights));
    expect([map.heads, map.rows, map.cols]).toEqual([4, 16, 16]);
    for (let h = 0; h < 4; h++) {
      for (let r = 0; r < 16; r++) {
        let sum = 0;
        for (let c = 0; c < 16; c++) sum += map.weights[(h * 16 + r) * 16 + c];
        expect(sum).toBeGreaterThan(0.97);
        expect(sum).toBeLessThan(1.03);
      }
    }
  });

  it("puts each weight at its head, query row and key column", () => {
    const weights = causal(2, 8, 7);
    const map = decodeAttention(encode(weights));
    for (const [h, r, c] of [[0, 0, 0], [1, 7, 3], [0, 5, 5], [1, 2, 6]]) {
      expect(map.weights[(h * 8 + r) * 8 + c]).toBeCloseTo(weights[h][r][c], 2);
    }
    // causal: no weight on future keys
    expect(map.weights[(1 * 8 + 2) * 8 + 6]).toBe(0);
  });

  it("handles rows and columns of different lengths", () => {
    const weights = [[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]]; // 1 head, 2 queries, 3 keys
    const map = decodeAttention(encode(weights));
    expect([map.rows, map.cols]).toEqual([2, 3]);
    expect(map.weights[1 * 3 + 2]).toBeCloseTo(0.8, 2);
  });

  it("decodes an event once", () => {
    const event = encode(causal(1, 4));
    expect(decodeAttention(event)).toBe(decodeAttention(event));
  });

  it("refuses data of the wrong length", () => {
    const event = { ...encode(causal(1, 4)), rows: 5 };
    expect(() => decodeAttention(event)).toThrow(/bytes/);
  });
});

describe("colour ramp", () => {
  const luminance = (lut: Uint8ClampedArray, i: number) =>
    0.2126 * lut[i * 4] + 0.7152 * lut[i * 4 + 1] + 0.0722 * lut[i * 4 + 2];

  it("darkens monotonically on a light page and lightens on a dark one", () => {
    const light = attentionRamp(false), dark = attentionRamp(true);
    for (let i = 8; i < 256; i += 8) {
      expect(luminance(light, i)).toBeLessThan(luminance(light, i - 8));
      expect(luminance(dark, i)).toBeGreaterThan(luminance(dark, i - 8));
    }
    expect(luminance(light, 0)).toBeGreaterThan(230); // no attention ≈ the page
    expect(luminance(dark, 0)).toBeLessThan(40);
  });

  it("maps weights 0..1 onto the ramp, more weight further along", () => {
    expect(rampIndex(0)).toBe(0);
    expect(rampIndex(1)).toBe(255);
    expect(rampIndex(2)).toBe(255);
    expect(rampIndex(0.25)).toBeGreaterThan(rampIndex(1 / 64));
    expect(rampIndex(1 / 64)).toBeGreaterThan(0);
  });

  it("paints one pixel per key and query", () => {
    const map = decodeAttention(encode([[[1, 0], [0.5, 0.5]]]));
    const ramp = attentionRamp(false);
    const px = headPixels(map, 0, ramp);
    expect(px.length).toBe(2 * 2 * 4);
    // row 0: all weight on key 0 (darkest), none on key 1 (the background)
    expect(Array.from(px.slice(0, 4))).toEqual(Array.from(ramp.slice(255 * 4, 256 * 4)));
    expect(Array.from(px.slice(4, 8))).toEqual(Array.from(ramp.slice(0, 4)));
  });

  it("reads CSS colours", () => {
    expect(parseRgb("#fff")).toEqual([255, 255, 255]);
    expect(parseRgb("#101820")).toEqual([16, 24, 32]);
    expect(parseRgb("rgb(1, 2, 3)")).toEqual([1, 2, 3]);
    expect(parseRgb("oklch(0.5 0.1 200)")).toBeNull();
  });
});

describe("attention in words", () => {
  it("says what a hovered cell means", () => {
    const map = decodeAttention(encode([[[1, 0], [0.75, 0.25]], [[1, 0], [0.5, 0.5]]]));
    expect(describeCell(map, 1, 1, 0)).toBe("position 1 attends to position 0 with weight 0.500 (head 1)");
    expect(describeCell(map, 0, 1, 1)).toMatch(/^position 1 attends to position 1 with weight 0\.25\d \(head 0\)$/);
  });

  it("names the tokens of a hovered cell, as the issue asks", () => {
    const text = "the harbour";
    const n = text.length;
    const weights = [Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (r === 8 && c === 1 ? 0.41 : r === 8 && c === 0 ? 0.59 : c === r ? 1 : 0)))];
    const map = decodeAttention({ ...encode(weights), tokens: [...text] });
    expect(describeCell(map, 0, 8, 1)).toBe("position 8 ('o') attends to position 1 ('h') with 0.41");
    expect(describeCell(map, 0, 3, 3)).toBe("position 3 ('␣') attends to position 3 ('␣') with 1.00");
  });

  it("keeps the old words for events without tokens, or with tokens that do not fit", () => {
    const weights = [[[1, 0], [0.5, 0.5]]];
    expect(describeCell(decodeAttention(encode(weights)), 0, 1, 0)).toBe(
      "position 1 attends to position 0 with weight 0.500 (head 0)");
    const odd = decodeAttention({ ...encode(weights), tokens: ["a", "b", "c"] }); // 3 for 2 rows
    expect(odd.tokens).toBeUndefined();
    expect(cellLabel(odd, 0)).toBeNull();
  });

  it("labels a pooled map's cells with the positions and tokens each covers", () => {
    const map = decodeAttention({ ...encode(causal(1, 64)), tokens: [..."ab\n ".repeat(32)] });
    expect(cellSpan(128, 64, 0)).toEqual([0, 1]);
    expect(cellSpan(100, 64, 63)).toEqual([98, 99]);
    expect(cellLabel(map, 0)).toBe("ab");
    expect(cellLabel(map, 1)).toBe("↵␣");
    expect(describeCell(map, 0, 1, 0)).toMatch(/^positions 2–3 \('↵␣'\) attend to positions 0–1 \('ab'\) with [01]\.\d\d$/);
    const ids = decodeAttention({ ...encode(causal(1, 64)), tokens: Array.from({ length: 128 }, (_, i) => String(i % 12)) });
    expect(cellLabel(ids, 5)).toBe("10 11"); // ids: kept apart
  });

  it("shows whitespace and control characters visibly, token ids as they are", () => {
    expect(showToken(" ")).toBe("␣");
    expect(showToken("\n")).toBe("↵");
    expect(showToken("\t")).toBe("⇥");
    expect(showToken("\u0007")).toBe("·");
    expect(showToken("11")).toBe("11");
    expect(showToken("'")).toBe("'");
  });

  it("labels every cell when labels fit, else every n-th", () => {
    expect(labelledCells(16, 288)).toEqual(Array.from({ length: 16 }, (_, i) => i)); // 18 px a cell
    expect(labelledCells(64, 288)).toEqual(Array.from({ length: 22 }, (_, i) => i * 3)); // 4.5 px: every 3rd
    expect(labelledCells(64, 48).length).toBeGreaterThan(1);
    expect(labelledCells(16, 288, 2).length).toBe(16);
    expect(labelledCells(16, 288, 3).length).toBe(8); // wider labels: every 2nd
    expect(labelledCells(0, 100)).toEqual([]);
  });

  it("fits a large map into the room it has, keeping its proportion", () => {
    expect(fitMapWidth({ height: 1000, width: 1000 }, 32, 32)).toBe(288);
    expect(fitMapWidth({ height: 120, width: 1000 }, 32, 32)).toBe(120);
    expect(fitMapWidth({ height: 120, width: 1000 }, 32, 16)).toBe(60);
    expect(fitMapWidth({ height: 1000, width: 200 }, 32, 32)).toBe(200);
    expect(fitMapWidth({ height: 5, width: 1000 }, 32, 32)).toBe(48);
  });

  it("finds attention modules, inside Repeats too", () => {
    expect(hasAttentionModules({ nodes: [{ type: "Input" }, { type: "Linear" }] })).toBe(false);
    expect(hasAttentionModules({ nodes: [{ type: "Repeat", graph: { nodes: [{ type: "MultiHeadAttention" }] } }] })).toBe(true);
    expect(hasAttentionModules(null)).toBe(false);
  });

  it("finds the attention of a head built from parts in the report, inside Repeats too", () => {
    const parts = { nodes: [{ type: "Input" }, { type: "MatMul" }, { type: "Softmax" }] };
    expect(hasAttentionModules(parts)).toBe(false); // no report yet: not known
    expect(hasAttentionModules(parts, { nodes: { weights: { attention: true } } })).toBe(true);
    expect(hasAttentionModules(parts, { nodes: { probs: { attention: false } } })).toBe(false);
    const nested = { nodes: { blocks: { attention: false, body: { nodes: { weights: { attention: true } } } } } };
    expect(hasAttentionModules({ nodes: [{ type: "Repeat" }] }, nested)).toBe(true);
    expect(noAttentionYet({ hasAttention: false, interval: 50, total: 300, ended: false })).toMatch(/Softmax over square/);
  });

  it("says why there are no maps yet", () => {
    expect(noAttentionYet({ hasAttention: true, interval: 50, total: 300, ended: false })).toBe("Waiting for the first snapshot (at step 50).");
    expect(noAttentionYet({ hasAttention: true, interval: 50, total: 20, ended: false })).toBe("Waiting for the first snapshot (at step 20).");
    expect(noAttentionYet({ hasAttention: true, interval: 0, total: 300, ended: false })).toMatch(/snapshots are off.*interval is 0.*above 0/);
    expect(noAttentionYet({ hasAttention: true, interval: 50, total: 300, ended: true })).toMatch(/ended before its first attention snapshot \(at step 50\)/);
    expect(noAttentionYet({ hasAttention: false, interval: 50, total: 300, ended: false })).toMatch(/no attention modules/);
  });
});

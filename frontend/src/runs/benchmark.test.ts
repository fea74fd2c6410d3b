import { describe, expect, it } from "vitest";

import { COSTS, row } from "../test/benchmark";
import {
  benchmarkView, compareNodes, compareRows, costsAtBatch, heatAt, parseCostNode, standings,
  toBenchmarkResult, type NodeCosts,
} from "./benchmark";
import { toRunEvents, toRunJob } from "./events";

describe("ranking a benchmark's rows", () => {
  it("marks the fastest median per batch size among the rows that ran and agree with eager", () => {
    const rows = [
      row("eager", 1, 2), row("compile", 1, 1.5), row("onnxruntime", 1, 0.5, { within_tolerance: false, max_abs_diff: 0.3 }),
      row("eager", 8, 4), row("compile", 8, null, { error: "torch.compile needs a C compiler." }), row("onnxruntime", 8, 5),
    ];
    const s = standings(rows);
    expect(s.get("compile@1")).toBe("best"); // onnxruntime is faster but flagged
    expect(s.get("onnxruntime@1")).toBe("flagged");
    expect(s.get("eager@1")).toBe("ranked");
    expect(s.get("eager@8")).toBe("best");
    expect(s.get("compile@8")).toBe("error");
  });
});

describe("a benchmark's view", () => {
  const job = (over: Record<string, unknown> = {}) => toRunJob({ id: 3, kind: "benchmark", status: "running", ...over });

  it("fills in from the events as they come: the latest progress, a row per backend × batch", () => {
    const events = toRunEvents([
      { type: "progress", seq: 1, step: 0, time: 0, backend: "eager", batch: 1, done: 10, total: 23 },
      { type: "benchmark", seq: 2, step: 0, time: 0, ...row("eager", 8, 4) },
      { type: "benchmark", seq: 3, step: 0, time: 0, ...row("eager", 1, 2) },
      { type: "progress", seq: 4, step: 0, time: 0, backend: "onnxruntime", batch: 64, done: 40, total: 100 },
      { type: "node_costs", seq: 5, step: 0, time: 0, ...COSTS },
    ]);
    const view = benchmarkView(job(), events);
    expect(view.progress).toEqual({ backend: "onnxruntime", batch: 64, done: 40, total: 100 });
    expect(view.rows.map((r) => `${r.backend}@${r.batch}`)).toEqual(["eager@1", "eager@8"]);
    expect(view.nodeCosts).toHaveLength(1);
    expect(benchmarkView(job({ status: "succeeded" }), events).progress).toBeNull();
  });

  it("reads a finished run's stored result, with the machine", () => {
    const result = {
      machine: { cpu: "EPYC", cores: 16, gpu: null, gpu_memory: null, device: "cpu", torch: "2.5.1", onnxruntime: "1.20.0", python: "3.11.9" },
      rows: [row("compile", 1, 1), row("eager", 1, 2)],
      node_costs: [COSTS],
      settings: { repeats: 3 },
    };
    const view = benchmarkView(job({ status: "succeeded", result }), []);
    expect(view.rows.map((r) => r.backend)).toEqual(["eager", "compile"]);
    expect(view.machine).toMatchObject({ cpu: "EPYC", cores: 16, gpu: "", torch: "2.5.1" });
    expect(toBenchmarkResult("nonsense")).toBeNull();
  });
});

describe("the canvas's heat", () => {
  it("gives each top-level node its share, a Repeat its summed row", () => {
    const heat = heatAt(COSTS, []);
    expect([...heat.keys()].sort()).toEqual(["blocks", "fc", "head"]);
    expect(heat.get("blocks")).toMatchObject({ share: 0.8, strength: 1 });
    expect(heat.get("fc")!.strength).toBeCloseTo(0.125);
  });

  it("inside a Repeat, sums each inner node over its copies", () => {
    const heat = heatAt(COSTS, ["blocks"]);
    expect(heat.get("attn")!.share).toBeCloseTo(0.6);
    expect(heat.get("attn")!.copies.map((c) => c.node)).toEqual(["blocks.0.attn", "blocks.1.attn"]);
    expect(heat.get("act")!.strength).toBeCloseTo(0.2 / 0.6);
  });

  it("reads a node's place from its id", () => {
    expect(parseCostNode("fc")).toEqual({ scope: [], copies: [], id: "fc" });
    expect(parseCostNode("outer.1.inner.0.attn")).toEqual({ scope: ["outer", "inner"], copies: [1, 0], id: "attn" });
  });

  it("shows the costs at the batch size picked, else the largest", () => {
    const small = { ...COSTS, batch: 1 };
    expect(costsAtBatch([small, COSTS], 1)).toBe(small);
    expect(costsAtBatch([small, COSTS], null)).toBe(COSTS);
    expect(costsAtBatch([], 1)).toBeNull();
  });
});

describe("comparing two benchmarks", () => {
  it("puts both medians side by side with B/A, per backend × batch", () => {
    const a = [row("eager", 1, 2), row("compile", 1, 4), row("onnxruntime", 1, null, { error: "no onnx" })];
    const b = [row("eager", 1, 1), row("compile", 1, 5), row("onnxruntime", 1, 3), row("eager", 8, 2)];
    const compared = compareRows(a, b);
    expect(compared.map((c) => [c.backend, c.batch, c.ratio])).toEqual([
      ["eager", 1, 0.5], ["compile", 1, 1.25], ["onnxruntime", 1, null], ["eager", 8, null],
    ]);
  });

  it("and per node, costliest first", () => {
    const b: NodeCosts = { ...COSTS, nodes: COSTS.nodes.map((n) => (n.node === "fc" ? { ...n, ms: 2 } : n)) };
    const nodes = compareNodes(COSTS, b);
    expect(nodes[0].node).toBe("blocks");
    expect(nodes.find((n) => n.node === "fc")!.ratio).toBe(2);
    expect(nodes.find((n) => n.node === "head")!.ratio).toBe(1);
  });
});

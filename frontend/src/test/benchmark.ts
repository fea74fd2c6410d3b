// Benchmark figures for unit tests: rows and node costs as a benchmark run reports them
// (compute/jobs/events.py BenchmarkEvent, NodeCostsEvent), and the benchmark run kind as
// GET /api/run-kinds serves it (compute/engine/benchmark.py BenchmarkSettings; written out
// here until the API's OpenAPI example carries it, then read from there as runKinds.ts does).
import type { RunKind } from "../api/types";
import type { BenchmarkRow, NodeCosts } from "../runs/benchmark";

export const row = (backend: string, batch: number, median: number | null, over: Partial<BenchmarkRow> = {}): BenchmarkRow => ({
  backend, batch, error: "", latency_ms_median: median, latency_ms_p95: median === null ? null : median * 1.2,
  samples_per_s: median ? (batch / median) * 1000 : null, tokens_per_s: null, peak_memory_bytes: 1 << 20,
  flops_per_s: median ? 1e9 : null, max_abs_diff: 0, within_tolerance: true, ...over,
});

export const COSTS: NodeCosts = {
  backend: "eager", batch: 8, method: "module hooks",
  nodes: [
    { node: "fc", parent: null, type: "Linear", ms: 1, share: 0.1, flops: 100, flops_per_s: 1e8 },
    { node: "blocks", parent: null, type: "Repeat", ms: 8, share: 0.8, flops: 800, flops_per_s: 1e8 },
    { node: "blocks.0.attn", parent: "blocks", type: "Linear", ms: 3, share: 0.3, flops: 300, flops_per_s: 1e8 },
    { node: "blocks.0.act", parent: "blocks", type: "ReLU", ms: 1, share: 0.1, flops: 0, flops_per_s: null },
    { node: "blocks.1.attn", parent: "blocks", type: "Linear", ms: 3, share: 0.3, flops: 300, flops_per_s: 1e8 },
    { node: "blocks.1.act", parent: "blocks", type: "ReLU", ms: 1, share: 0.1, flops: 0, flops_per_s: null },
    { node: "head", parent: null, type: "Linear", ms: 1, share: 0.1, flops: 100, flops_per_s: 1e8 },
  ],
};

export const BENCHMARK_KIND: RunKind = {
  kind: "benchmark",
  title: "Benchmark",
  description: "Time the graph's forward pass on every backend.",
  settings_schema: {
    additionalProperties: false,
    properties: {
      batch_sizes: {
        default: [1, 8, 64], items: { maximum: 4096, minimum: 1, type: "integer" }, maxItems: 8, minItems: 1,
        title: "Batch sizes", type: "array", description: "Each is timed on its own.",
      },
      backends: {
        default: ["eager", "compile", "onnxruntime", "eager_bf16", "compile_bf16"],
        items: { enum: ["eager", "compile", "onnxruntime", "eager_bf16", "compile_bf16"], type: "string" },
        maxItems: 5, minItems: 1, title: "Backends", type: "array",
      },
      warmup: { default: 3, maximum: 1000, minimum: 0, title: "Warm-up", type: "integer" },
      repeats: { default: 20, maximum: 10000, minimum: 1, title: "Repeats", type: "integer" },
      device: { default: "auto", enum: ["auto", "cpu", "cuda"], title: "Device", type: "string" },
      seed: { default: 0, maximum: 2147483647, minimum: 0, title: "Seed", type: "integer" },
      per_node: { default: true, title: "Per-node cost", type: "boolean" },
    },
    title: "BenchmarkSettings",
    type: "object",
  },
};

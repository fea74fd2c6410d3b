// FPGA figures for unit tests: a finished FPGA run's result as the server stores it
// (compute/jobs/events.py FpgaResult) and the fpga run kind as GET /api/run-kinds serves it
// (fpga/settings.py FpgaSettings, the settings the form tests touch; written out here, as
// test/benchmark.ts does for the benchmark's, until the API's OpenAPI example carries it).
import type { RunKind } from "../api/types";

export const FPGA_RESULT = {
  kind: "fpga",
  settings: { precision: "ap_fixed<16,6>" },
  warnings: [{ message: "Softmax is computed with lookup tables of exp and 1/x on the FPGA", node: "head", field: "type" }],
  stages: { convert: 2.1, compile: 3.6, build: 6.0, emulate: 1.7, trace: 5.2 },
  comparison: {
    precision: "ap_fixed<16,6>", samples: 40, inputs: "40 seeded random inputs (normal, seed 0)",
    agreement: 0.975, max_error: 0.078, mean_error: 0.022,
    nodes: [
      { node: "fc", max_error: 0.02, mean_error: 0.005 },
      { node: "head", max_error: 0.08, mean_error: 0.02 },
    ],
  },
  sweep: [
    { bits: 12, precision: "ap_fixed<12,6>", agreement: 0.95, max_error: 0.7, mean_error: 0.2, seconds: 9.1 },
    { bits: 8, precision: "ap_fixed<8,6>", agreement: 0.15, max_error: 18.2, mean_error: 4.6, seconds: 8.7 },
  ],
  tools: [
    { tool: "vitis_hls", ran: false, error: "Vitis HLS is not on this worker's PATH", figures: {} },
  ],
  log_tail: [],
};

export const FPGA_KIND: RunKind = {
  kind: "fpga",
  title: "FPGA",
  description: "Turn the graph into an HLS project and emulate it in fixed point.",
  settings_schema: {
    additionalProperties: false,
    properties: {
      precision: { default: "ap_fixed<16,6>", maxLength: 40, title: "Precision", type: "string", "x-basic": true },
      precision_overrides: {
        additionalProperties: { type: "string" }, title: "Precision per node", type: "object",
        description: "Node id → precision, for nodes that need more (or fewer) bits than the rest.",
      },
      io_type: { default: "io_parallel", enum: ["io_parallel", "io_stream"], title: "I/O style", type: "string", "x-basic": true },
      sweep_bits: {
        items: { maximum: 32, minimum: 4, type: "integer" }, maxItems: 8, title: "Sweep bit widths", type: "array", uniqueItems: true,
      },
      samples: { default: 500, maximum: 5000, minimum: 1, title: "Inputs compared", type: "integer" },
      rtl: { default: false, title: "Verilog (Linear and ReLU models)", type: "boolean" },
    },
    title: "FpgaSettings",
    type: "object",
  },
};

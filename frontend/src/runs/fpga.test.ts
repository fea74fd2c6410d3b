import { describe, expect, it } from "vitest";

import type { RunCheck } from "../api/types";
import { joinProblems, problemsIn } from "../graph/report";
import { FPGA_RESULT } from "../test/fpga";
import { checkMarks, NO_MARKS } from "./check";
import { toRunEvent, toRunEvents, toRunJob } from "./events";
import { agreementText, errorHeatAt, errorText, fpgaView, toFpgaResult, toolText } from "./fpga";
import { rowsToMap } from "./Settings";

const job = (over: Record<string, unknown> = {}) => toRunJob({ id: 3, kind: "fpga", status: "running", ...over });
const base = { step: 0, time: 0 };

describe("an FPGA run's events", () => {
  it("reads stage, comparison, sweep and tool events; a malformed one is kept as another event", () => {
    const events = toRunEvents([
      { type: "stage", seq: 1, ...base, stage: "compile", text: "compiling (first compile takes 5-20 s)", seconds: null },
      { type: "comparison", seq: 2, ...base, ...FPGA_RESULT.comparison },
      { type: "sweep", seq: 3, ...base, ...FPGA_RESULT.sweep[0] },
      { type: "tool", seq: 4, ...base, tool: "yosys", ran: true, error: "", figures: { luts: 1200 } },
      { type: "sweep", seq: 5, ...base, precision: "ap_fixed<8,6>" }, // no bits
    ]);
    expect(events.map((e) => e.type)).toEqual(["stage", "comparison", "sweep", "tool", "other"]);
    expect(events[0]).toMatchObject({ stage: "compile", seconds: null });
    expect(events[1]).toMatchObject({ agreement: 0.975, nodes: [{ node: "fc" }, { node: "head" }] });
  });

  it("keeps an FPGA run's stored result on the run object, and reads it field by field", () => {
    const run = job({ status: "succeeded", result: FPGA_RESULT });
    expect(run.result).not.toBeNull();
    const result = toFpgaResult(run.result)!;
    expect(result.comparison!.precision).toBe("ap_fixed<16,6>");
    expect(result.warnings[0].node).toBe("head");
    expect(toFpgaResult({ rows: [] })).toBeNull(); // a benchmark's
    expect(toFpgaResult({ kind: "fpga", comparison: "nonsense", sweep: [{ bits: "8" }], tools: 3 })).toMatchObject({
      comparison: null, sweep: [], tools: [], log_tail: [],
    });
  });
});

describe("an FPGA run's view", () => {
  const events = () => toRunEvents([
    { type: "stage", seq: 1, ...base, stage: "convert", text: "converting", seconds: null },
    { type: "stage", seq: 2, ...base, stage: "build", text: "the HLS project is written and compiled", seconds: 6 },
    { type: "stage", seq: 3, ...base, stage: "sweep", text: "sweep: ap_fixed<12,6>", seconds: null },
    { type: "sweep", seq: 4, ...base, ...FPGA_RESULT.sweep[0], agreement: 0.5 },
    { type: "tool", seq: 5, ...base, tool: "vitis_hls", ran: true, error: "", figures: { interval: { max: 1 } } },
  ]);

  it("says the stage under way while it runs, and none once it ended", () => {
    expect(fpgaView(job(), events()).current).toBe("sweep: ap_fixed<12,6>");
    expect(fpgaView(job({ status: "failed" }), events()).current).toBeNull();
    const ended = toRunEvents([{ type: "stage", seq: 1, ...base, stage: "build", text: "built", seconds: 6 }]);
    expect(fpgaView(job(), ended).current).toBeNull(); // the last stage ended: nothing under way
  });

  it("joins the stored result with later events: a sweep width or a tool the events report again wins", () => {
    const view = fpgaView(job({ result: FPGA_RESULT }), events());
    expect(view.sweep.map((r) => [r.bits, r.agreement])).toEqual([[8, 0.15], [12, 0.5]]); // narrowest first
    expect(view.tools).toHaveLength(1);
    expect(view.tools[0]).toMatchObject({ tool: "vitis_hls", ran: true });
    expect(view.comparison!.agreement).toBe(0.975);
    expect(view.warnings).toHaveLength(1);
  });

  it("shows the stored stage times of a finished run whose events are not read yet", () => {
    const view = fpgaView(job({ status: "succeeded", result: FPGA_RESULT }), []);
    expect(view.stages.map((s) => [s.stage, s.seconds])).toContainEqual(["trace", 5.2]);
  });
});

describe("an FPGA run in words", () => {
  it("writes agreement and errors briefly", () => {
    expect(agreementText(0.975)).toBe("97.5%");
    expect(agreementText(1)).toBe("100%");
    expect(agreementText(null)).toBe("–");
    expect(errorText(0)).toBe("0");
    expect(errorText(0.0781)).toBe("0.078");
    expect(errorText(18.24)).toBe("18");
    expect(errorText(3.1e-5)).toBe("3.1e-5");
  });

  it("says what each tool found, or why it did not run", () => {
    expect(toolText({ tool: "verilator", ran: true, error: "", figures: { bit_exact: true } })).toContain("bit-exact");
    expect(toolText({ tool: "verilator", ran: true, error: "", figures: { bit_exact: false, max_diff: 0.004 } }))
      .toBe("the Verilog differs from the emulation (max difference 0.004)");
    expect(toolText({ tool: "yosys", ran: true, error: "", figures: { luts: 1200, ffs: 310, pipeline_depth: 4 } }))
      .toBe("LUTs 1200 · flip-flops 310 · pipeline depth 4");
    expect(toolText({
      tool: "vitis_hls", ran: true, error: "",
      figures: { latency_cycles: { worst: 3 }, latency_ns: { worst: 15 }, interval: { max: 1 }, resources: { DSP: 6, LUT: 406 }, csim: { passed: true } },
    })).toBe("latency 3 cycles (15 ns) · II 1 · DSP 6, LUT 406 · C simulation passed");
    expect(toolText({ tool: "vitis_hls", ran: false, error: "Vitis HLS is not on this worker's PATH", figures: {} }))
      .toBe("did not run: Vitis HLS is not on this worker's PATH");
  });
});

describe("the canvas's error overlay", () => {
  const comparison = toFpgaResult(FPGA_RESULT)!.comparison;

  it("tints each node with a figure by its max error against the largest; others have none", () => {
    const heat = errorHeatAt(comparison, []);
    expect([...heat.keys()].sort()).toEqual(["fc", "head"]);
    expect(heat.get("head")!.strength).toBe(1);
    expect(heat.get("fc")!.strength).toBeCloseTo(0.25);
    expect(heat.has("x")).toBe(false);
  });

  it("shows nothing inside a Repeat (its blocks are not mapped yet) or without a comparison", () => {
    expect(errorHeatAt(comparison, ["blocks"]).size).toBe(0);
    expect(errorHeatAt(null, []).size).toBe(0);
  });
});

describe("the live check's marks on the canvas", () => {
  const answer = (over: Partial<RunCheck>): RunCheck => ({ ok: true, error: null, problems: [], queue: "fpga", warnings: [], cpu_seconds: null, ...over });

  it("gives the refused nodes of a refused run, and the approximate ones of one that can start", () => {
    const refused = checkMarks({
      status: "done", key: "k", result: answer({
        ok: false, error: "the graph cannot go to an FPGA",
        problems: [
          { message: "MultiHeadAttention is not supported", node: "blocks/attn", field: "type" },
          { message: "the whole graph", node: null, field: null },
        ],
      }),
    });
    expect(refused.problems.map((p) => p.node)).toEqual(["blocks/attn"]);
    const warned = checkMarks({ status: "done", key: "k", result: answer({ warnings: [{ message: "lookup tables", node: "sm", field: "type" }] }) });
    expect(warned).toEqual({ problems: [], warnings: [{ message: "lookup tables", node: "sm", field: "type" }] });
    expect(checkMarks({ status: "checking", key: "k" })).toBe(NO_MARKS);
    expect(checkMarks({ status: "done", key: "k", result: answer({}) })).toBe(NO_MARKS);
  });

  it("puts a node's marks on it at the scope shown, and a Repeat's inner ones on the Repeat", () => {
    const marks = [{ message: "refused", node: "blocks/attn", field: "type" }];
    expect([...problemsIn(marks, []).keys()]).toEqual(["blocks"]);
    expect([...problemsIn(marks, ["blocks"]).keys()]).toEqual(["attn"]);
    const own = new Map([["blocks", [{ message: "own", node: "blocks", field: null }]]]);
    const joined = joinProblems(own, problemsIn(marks, []));
    expect(joined.get("blocks")!.map((p) => p.message)).toEqual(["own", "refused"]);
    expect(joinProblems(own, new Map())).toBe(own);
    // A training run's check repeats the graph's own problems: each shows once.
    const again = joinProblems(own, new Map([["blocks", [{ message: "own", node: "blocks", field: null }]]]));
    expect(again.get("blocks")!.map((p) => p.message)).toEqual(["own"]);
  });
});

describe("the per-node precision editor's value", () => {
  it("keeps the rows with a node and a precision; none is the default", () => {
    expect(rowsToMap([["fc", " ap_fixed<18,8> "], ["head", ""], ["", "ap_fixed<8,4>"]])).toEqual({ fc: "ap_fixed<18,8>" });
    expect(rowsToMap([])).toBeUndefined();
  });
});

describe("a stage event's words", () => {
  it("are cut short, never unbounded", () => {
    const e = toRunEvent({ type: "stage", seq: 1, ...base, stage: "x", text: "y".repeat(10_000), seconds: 1 });
    expect(e && e.type === "stage" && e.text.length).toBe(500);
  });
});

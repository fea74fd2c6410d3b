import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ApiError } from "../api/client";
import type { GraphDocument, RunCheck } from "../api/types";
import { aboutDuration, checkKey, cpuNotice, createRunCheck, startGate, type CheckBody, type CheckState } from "./check";

const doc = (width = 10, x = 0): GraphDocument => ({
  format: "shipyard.graph/v1",
  nodes: [
    { id: "x", type: "Input", params: { shape: [64] } },
    { id: "head", type: "Linear", params: { out_features: width } },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "head" }, { from: "head", to: "y" }],
  layout: { x: { x, y: 0 } },
} as unknown as GraphDocument);

const OK: RunCheck = {
  ok: true, error: null, problems: [], queue: "cpu", warnings: [], cpu_seconds: 12,
};
const MISFIT: RunCheck = {
  ok: false, error: "digits does not fit this graph: the model outputs 64 classes, but digits has 10: make the last Linear ('head') 10 wide (out_features 10)",
  problems: [], queue: null, warnings: [], cpu_seconds: null,
};

describe("the start gate", () => {
  it("blocks Start with the server's reason only when the check refused the run", () => {
    expect(startGate({ status: "done", key: "k", result: MISFIT })).toEqual({ blocked: true, reason: MISFIT.error });
    expect(startGate({ status: "done", key: "k", result: OK }).blocked).toBe(false);
    expect(startGate({ status: "checking", key: "k" }).blocked).toBe(false);
    expect(startGate({ status: "unavailable", key: "k", error: "down" }).blocked).toBe(false);
    expect(startGate({ status: "idle" }).blocked).toBe(false);
  });
});

describe("the CPU notice", () => {
  const done = (result: Partial<RunCheck>): CheckState => ({ status: "done", key: "k", result: { ...OK, ...result } });

  it("warns of a CPU run over three minutes, in minutes", () => {
    expect(cpuNotice(done({ cpu_seconds: 1320 }))).toMatch(/^This run will take about 22 minutes on the CPU\./);
    expect(cpuNotice(done({ cpu_seconds: 181 }))).toMatch(/about 3 minutes/);
  });

  it("says nothing for a short run, a GPU run or a refused one", () => {
    expect(cpuNotice(done({ cpu_seconds: 180 }))).toBeNull();
    expect(cpuNotice(done({ cpu_seconds: 5000, queue: "gpu" }))).toBeNull();
    expect(cpuNotice({ status: "done", key: "k", result: MISFIT })).toBeNull();
    expect(cpuNotice({ status: "checking", key: "k" })).toBeNull();
  });

  it("gives long runs in hours", () => {
    expect(aboutDuration(60)).toBe("about 1 minute");
    expect(aboutDuration(119 * 60)).toBe("about 119 minutes");
    expect(aboutDuration(9000)).toBe("about 2.5 hours");
  });
});

describe("the check's key", () => {
  it("changes with the model, the dataset or the settings, not with the layout", () => {
    const body: CheckBody = { document: doc(), dataset: "digits", config: { steps: 100 } };
    expect(checkKey({ ...body, document: doc(10, 300) })).toBe(checkKey(body));
    expect(checkKey({ ...body, document: doc(64) })).not.toBe(checkKey(body));
    expect(checkKey({ ...body, dataset: "moons" })).not.toBe(checkKey(body));
    expect(checkKey({ ...body, config: { steps: 101 } })).not.toBe(checkKey(body));
  });
});

describe("the live check", () => {
  let states: CheckState[];
  let calls: CheckBody[];
  let answer: (body: CheckBody) => Promise<RunCheck>;

  const make = () => createRunCheck({
    check: (body, signal) => {
      calls.push(body);
      return new Promise((resolve, reject) => {
        signal.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })));
        answer(body).then(resolve, reject);
      });
    },
    onChange: (s) => states.push(s),
    delayMs: 300,
  });

  beforeEach(() => {
    vi.useFakeTimers();
    states = [];
    calls = [];
    answer = async (body) => ((body.document.nodes[1].params as { out_features: number }).out_features === 10 ? OK : MISFIT);
  });
  afterEach(() => vi.useRealTimers());

  it("asks once, 300 ms after the last change, and only about the latest", async () => {
    const checker = make();
    checker.request({ document: doc(64), dataset: "digits" });
    await vi.advanceTimersByTimeAsync(200);
    checker.request({ document: doc(32), dataset: "digits" });
    await vi.advanceTimersByTimeAsync(200);
    checker.request({ document: doc(64), dataset: "digits" });
    await vi.advanceTimersByTimeAsync(299);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => (c.document.nodes[1].params as { out_features: number }).out_features)).toEqual([64]);
    expect(states.at(-1)).toMatchObject({ status: "done", result: MISFIT });
    // The same run again (a node moved): no new request.
    checker.request({ document: doc(64, 500), dataset: "digits" });
    await vi.advanceTimersByTimeAsync(400);
    expect(calls).toHaveLength(1);
  });

  it("drops an answer that a newer change made stale", async () => {
    let release: (r: RunCheck) => void = () => {};
    answer = () => new Promise((resolve) => (release = resolve));
    const checker = make();
    checker.request({ document: doc(64), dataset: "digits" });
    await vi.advanceTimersByTimeAsync(300);
    const stale = release;
    checker.request({ document: doc(10), dataset: "digits" });
    stale(MISFIT); // the old request was aborted: its answer must not land
    await vi.advanceTimersByTimeAsync(0);
    expect(states.at(-1)).toMatchObject({ status: "checking" });
    await vi.advanceTimersByTimeAsync(300);
    release(OK);
    await vi.advanceTimersByTimeAsync(0);
    expect(states.at(-1)).toMatchObject({ status: "done", result: OK });
  });

  it("checks at once when Start is pressed, reusing an answer it already has", async () => {
    const checker = make();
    const refused = await checker.now({ document: doc(64), dataset: "digits" });
    expect(startGate(refused).blocked).toBe(true);
    expect(calls).toHaveLength(1);
    await checker.now({ document: doc(64, 9), dataset: "digits" });
    expect(calls).toHaveLength(1);
    const fine = await checker.now({ document: doc(10), dataset: "digits" });
    expect(startGate(fine).blocked).toBe(false);
    expect(calls).toHaveLength(2);
  });

  it("leaves Start to the server when the check cannot be made", async () => {
    answer = () => Promise.reject(new ApiError(0, { error: "the server could not be reached" }));
    const checker = make();
    const state = await checker.now({ document: doc(64), dataset: "digits" });
    expect(state).toMatchObject({ status: "unavailable", error: "the server could not be reached" });
    expect(startGate(state).blocked).toBe(false);
  });

  it("goes idle when there is nothing to check", async () => {
    const checker = make();
    checker.request({ document: doc(64), dataset: "digits" });
    checker.request(null);
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toEqual([]);
    expect(states.at(-1)).toEqual({ status: "idle" });
  });
});

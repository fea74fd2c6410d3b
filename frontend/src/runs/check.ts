// The run form's live check: the editor's current graph, the dataset and the settings go to
// POST /api/jobs/check (the very checks POST /api/jobs runs, nothing stored) a moment after
// they last changed, so that Start is disabled with the reason before anything is saved.
// Only the latest request counts: an older answer that comes late is dropped.
import { ApiError } from "../api/client";
import type { GraphDocument, Problem, RunCheck } from "../api/types";
import { canonical, modelPart } from "../graph/ops";
import { settingOf } from "./config";

/** The body of POST /api/jobs/check. */
export interface CheckBody {
  document: GraphDocument;
  dataset?: string;
  upload?: number;
  dataset_options?: Record<string, unknown>;
  config?: Record<string, unknown>;
  /** a benchmark's or an FPGA run's: its kind and the training run whose weights it uses */
  kind?: "benchmark" | "fpga";
  weights?: number;
}

export type CheckState =
  | { status: "idle" }
  | { status: "checking"; key: string }
  | { status: "done"; key: string; result: RunCheck }
  /** the check could not be made (the server unreachable): Start stays, the server decides */
  | { status: "unavailable"; key: string; error: string };

/** What the check depends on: the model (not its layout), the dataset and the settings. */
export function checkKey(body: CheckBody): string {
  const { document, ...rest } = body;
  return canonical({ model: modelPart(document), ...rest });
}

/** Whether Start is blocked, and why. */
export function startGate(state: CheckState): { blocked: boolean; reason: string | null } {
  if (state.status === "done" && !state.result.ok) {
    return { blocked: true, reason: state.result.error ?? "this run cannot start" };
  }
  return { blocked: false, reason: null };
}

/** What a check says of the graph's nodes: those a run refuses, those it computes approximately. */
export interface CheckMarks {
  problems: Problem[];
  warnings: Problem[];
}

export const NO_MARKS: CheckMarks = { problems: [], warnings: [] };

/** The problems and warnings of a finished check that name a node (the canvas shows them). */
export function checkMarks(state: CheckState): CheckMarks {
  if (state.status !== "done") return NO_MARKS;
  const problems = state.result.ok ? [] : state.result.problems.filter((p) => !!p.node);
  const warnings = (state.result.warnings ?? []).filter((p) => !!p.node);
  return problems.length || warnings.length ? { problems, warnings } : NO_MARKS;
}

/** The server's problems by setting (`config.lr` → `lr`), the live check's first, else those
 * of the last start: each marks its field in the form. */
export function fieldProblems(state: CheckState, startProblems: readonly Problem[]): Record<string, string> {
  const found: Record<string, string> = {};
  const problems = state.status === "done" && !state.result.ok ? state.result.problems : startProblems;
  for (const p of problems) {
    const name = settingOf(p.field);
    if (name && !(name in found)) found[name] = p.message;
  }
  return found;
}

/** The CPU runs that warn before they start: those estimated over this many seconds. */
export const CPU_WARNING_SECONDS = 180;

/** "about 12 minutes", "about 2.5 hours". */
export function aboutDuration(seconds: number): string {
  const minutes = Math.max(1, Math.round(seconds / 60));
  if (minutes < 120) return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
  return `about ${(seconds / 3600).toFixed(1)} hours`;
}

/** The warning for a run bound for the CPU queue that will take more than a few minutes. */
export function cpuNotice(state: CheckState, limit = CPU_WARNING_SECONDS): string | null {
  if (state.status !== "done" || !state.result.ok || state.result.queue !== "cpu") return null;
  const seconds = state.result.cpu_seconds;
  if (seconds == null || seconds <= limit) return null;
  return `This run will take ${aboutDuration(seconds)} on the CPU. Fewer steps, a smaller batch or a smaller model make it shorter.`;
}

export interface RunCheckDeps {
  check(body: CheckBody, signal: AbortSignal): Promise<RunCheck>;
  onChange(state: CheckState): void;
  delayMs?: number;
}

export interface RunChecker {
  /** check `body` after the delay (null: nothing to check) */
  request(body: CheckBody | null): void;
  /** check `body` at once (or give the answer already had for it) */
  now(body: CheckBody): Promise<CheckState>;
  stop(): void;
}

export function createRunCheck({ check, onChange, delayMs = 300 }: RunCheckDeps): RunChecker {
  let state: CheckState = { status: "idle" };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let controller: AbortController | null = null;
  let pending: Promise<CheckState> | null = null;

  const put = (next: CheckState) => {
    state = next;
    onChange(next);
  };

  const run = (body: CheckBody, key: string): Promise<CheckState> => {
    clearTimeout(timer);
    timer = undefined;
    controller?.abort();
    const mine = new AbortController();
    controller = mine;
    if (state.status !== "checking" || state.key !== key) put({ status: "checking", key });
    pending = check(body, mine.signal).then(
      (result): CheckState => ({ status: "done", key, result }),
      (error: unknown): CheckState => {
        if ((error as Error).name === "AbortError") return { status: "checking", key };
        const message = error instanceof ApiError ? error.body.error : (error as Error).message;
        return { status: "unavailable", key, error: message };
      },
    ).then((next) => {
      if (controller === mine) {
        controller = null;
        pending = null;
        put(next);
      }
      return next;
    });
    return pending;
  };

  return {
    request(body) {
      if (body === null) {
        clearTimeout(timer);
        controller?.abort();
        controller = null;
        if (state.status !== "idle") put({ status: "idle" });
        return;
      }
      const key = checkKey(body);
      if (state.status !== "idle" && state.key === key) return;
      clearTimeout(timer);
      controller?.abort();
      controller = null;
      put({ status: "checking", key });
      timer = setTimeout(() => void run(body, key), delayMs);
    },
    now(body) {
      const key = checkKey(body);
      if ((state.status === "done" || state.status === "unavailable") && state.key === key) {
        return Promise.resolve(state);
      }
      if (state.status === "checking" && state.key === key && pending) return pending;
      return run(body, key);
    },
    stop() {
      clearTimeout(timer);
      controller?.abort();
      controller = null;
    },
  };
}

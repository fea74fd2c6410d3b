// The learning paths' endpoints (docs/paths.md): the list, one path with its steps, a step's
// check on the user's own canvas, and a user's progress. Their bodies are the API's
// generated types (api/types.ts), under the names the panel uses.
import { request } from "../api/client";
import type { GraphDocument, GuidedPath, PathProgress, PathStep, PathSummary, StepCheck } from "../api/types";

export type { PathStep, PathSummary } from "../api/types";
export type PathDetail = GuidedPath;
export type CheckResult = StepCheck;
/** How a step is checked: on the canvas (the engine's inspection), or by what the runs
 * drawer shows (a finished run whose loss fell, its attention maps, its samples). */
export type CheckKind = PathStep["check"];
/** What the panel keeps: the steps done and the step shown. */
export type Progress = Pick<PathProgress, "done" | "current">;

const at = (name: string) => `/api/paths/${encodeURIComponent(name)}`;

export const pathsApi = {
  list: () => request<PathSummary[]>("GET", "/api/paths"),
  detail: (name: string) => request<PathDetail>("GET", at(name)),
  check: (name: string, step: string, document: GraphDocument) =>
    request<CheckResult>("POST", `${at(name)}/steps/${encodeURIComponent(step)}/check`, document),
  progress: (name: string) => request<PathProgress>("GET", `${at(name)}/progress`),
  saveProgress: (name: string, progress: Progress) => request<PathProgress>("PUT", `${at(name)}/progress`, progress),
};

export type PathsApi = typeof pathsApi;

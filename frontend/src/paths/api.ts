// The learning paths' endpoints (docs/api.md "Learning paths"): the list, one path with its
// steps, a step's check on the user's own canvas, and a user's progress.
//
// The shapes are typed here until the API's schema carries them (the paths endpoints land in
// the same change); then these become names for the generated types.
import { request } from "../api/client";
import type { GraphDocument } from "../api/types";

export interface PathSummary {
  name: string;
  title: string;
  summary: string;
  /** how many steps */
  steps: number;
  /** the built-in dataset its model trains on */
  dataset: string;
}

/** How a step is checked: on the canvas (the engine's inspection), or by what the runs
 * drawer shows (a finished run whose loss fell, its attention maps, its samples). */
export type CheckKind = "canvas" | "run" | "attention" | "generate";

export interface PathStep {
  id: string;
  title: string;
  /** the explanation, Markdown */
  text: string;
  /** what to build or do, Markdown */
  task: string;
  check: CheckKind;
  /** the canvas once the step is done ("Show me") */
  solution: GraphDocument | null;
}

export interface PathDetail {
  name: string;
  title: string;
  summary: string;
  dataset: string;
  steps: PathStep[];
}

export interface CheckResult {
  passed: boolean;
  /** one sentence: what is missing or wrong */
  message: string;
  /** the node it is about, when there is one */
  node: string | null;
}

export interface Progress {
  done: string[];
  current: string | null;
}

const at = (name: string) => `/api/paths/${encodeURIComponent(name)}`;

export const pathsApi = {
  list: () => request<PathSummary[]>("GET", "/api/paths"),
  detail: (name: string) => request<PathDetail>("GET", at(name)),
  check: (name: string, step: string, document: GraphDocument) =>
    request<CheckResult>("POST", `${at(name)}/steps/${encodeURIComponent(step)}/check`, document),
  progress: (name: string) => request<Progress>("GET", `${at(name)}/progress`),
  saveProgress: (name: string, progress: Progress) => request<Progress>("PUT", `${at(name)}/progress`, progress),
};

export type PathsApi = typeof pathsApi;

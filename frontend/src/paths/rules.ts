// When a step that is not checked on the canvas is done, from what the runs drawer shows,
// and what the panel tells the user to press meanwhile. Pure: the store feeds it the
// drawer's state.
import type { Job } from "../api/types";
import { isEnded } from "../runs/events";
import type { RunTab } from "../runs/store";
import type { Series } from "../runs/series";
import type { CheckKind } from "./api";

/** What the run steps look at: the drawer's open run and what it reported. */
export interface DrawerView {
  /** the editor's saved graph; null before the first save */
  graphId: number | null;
  loggedIn: boolean;
  drawerOpen: boolean;
  tab: RunTab;
  job: Job | null;
  series: Record<string, Series>;
  attentionModules: number;
  samples: number;
}

function finite(s: Series | undefined): number[] {
  return s ? s.values.filter(Number.isFinite) : [];
}

/** Whether the run's loss fell: its last value below its first, on the validation loss when
 * it has two points or more (what generalises), else the training loss. */
export function lossFell(series: Record<string, Series>): boolean {
  const val = finite(series.val_loss);
  const values = val.length >= 2 ? val : finite(series.train_loss);
  return values.length >= 2 && values[values.length - 1] < values[0];
}

/** The drawer's run, when it is a training run of this model. */
function modelRun(view: DrawerView): Job | null {
  const job = view.job;
  return job && job.kind === "train" && view.graphId !== null && job.graph === view.graphId ? job : null;
}

function finished(view: DrawerView): Job | null {
  const job = modelRun(view);
  return job && job.status === "succeeded" ? job : null;
}

/** Whether a run step is done by what the drawer shows now. A canvas step never is: the
 * engine's check decides it. */
export function runStepDone(kind: CheckKind, view: DrawerView): boolean {
  switch (kind) {
    case "canvas":
      return false;
    case "run":
      return finished(view) !== null && lossFell(view.series);
    case "attention":
      return finished(view) !== null && view.drawerOpen && view.tab === "attention" && view.attentionModules > 0;
    case "generate":
      return modelRun(view) !== null && view.drawerOpen && view.tab === "samples" && view.samples > 0;
  }
}

/** What to press next for a run step, in one sentence; null for a canvas step. */
export function runStepHint(kind: CheckKind, view: DrawerView): string | null {
  if (kind === "canvas") return null;
  if (!view.loggedIn) return "Runs need an account: sign up or log in (your canvas is kept), then press ▶ Run.";
  const job = modelRun(view);
  if (kind === "run") {
    if (!job) return "Press ▶ Run, then Start run: the model is saved and trains on the path's dataset.";
    if (!isEnded(job.status)) return `Training: step ${job.step} of ${job.total_steps}. The loss chart fills as it learns.`;
    if (job.status !== "succeeded") return `Run #${job.id} ${job.status}: press ▶ Run and start another.`;
    return lossFell(view.series) ? "The loss fell: the model learnt something."
      : `Run #${job.id} finished but its loss did not fall: train for more steps and run again.`;
  }
  if (!job || job.status !== "succeeded") return "First finish a run (the step before): press ▶ Run.";
  if (kind === "attention") {
    return view.attentionModules > 0 ? "Open the Attention tab of the runs drawer."
      : `Run #${job.id} recorded no attention maps: start a run with attention snapshots on.`;
  }
  return view.samples > 0 ? "Open the Samples tab of the runs drawer."
    : `Run #${job.id} wrote no samples: runs on a text dataset write one at each evaluation.`;
}

/** The drawer tab a run step is about. */
export function tabFor(kind: CheckKind): RunTab {
  return kind === "attention" ? "attention" : kind === "generate" ? "samples" : "run";
}

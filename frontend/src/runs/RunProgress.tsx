// How the open run is going, beside its "step 110 / 300": time taken, time left from the
// measured step rate, throughput; and a warning when the model starts to memorize its
// training data (see progress.ts).

import { useEffect, useMemo, useState } from "react";

import type { Job } from "../api/types";
import {
  detectOverfitting, formatDuration, formatThroughput, overfittingAdvice, secondsLeft, stepRate, throughput,
} from "./progress";
import { isTextRun, useRuns } from "./store";

/** Seconds since `iso`, again every second while `live`. */
function useSecondsSince(iso: string | null, live: boolean): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [live]);
  if (!iso) return null;
  const since = Date.parse(iso);
  return Number.isFinite(since) ? Math.max(0, (now - since) / 1000) : null;
}

/** Elapsed time, time left and throughput of a running run. */
export function RunProgress({ job }: { job: Job }) {
  const events = useRuns((s) => s.events);
  const series = useRuns((s) => s.derived.series);
  const lastStatus = useRuns((s) => s.derived.status);
  const running = job.status === "running";
  // A run opened while queued learns that it started from its events, not the run object.
  const started = job.started_at
    ?? (lastStatus?.status === "running" ? new Date(lastStatus.time * 1000).toISOString() : null);
  const elapsed = useSecondsSince(started, running);
  const rate = useMemo(() => stepRate(events), [events]);
  if (!running) return null;
  const left = secondsLeft(rate, job.total_steps);
  const rateText = rate ? `${rate.perSecond >= 10 ? rate.perSecond.toFixed(0) : rate.perSecond.toPrecision(2)} steps/s` : "";
  return (
    <div className="runs-progress-facts runs-num" data-testid="run-timing">
      <span title="Time since the run started training">
        elapsed <b data-testid="run-elapsed">{formatDuration(elapsed)}</b>
      </span>
      <span title={rate ? `From the last stretch of steps (${rateText})` : "Known once a few steps are measured"}>
        left <b data-testid="run-eta">{left === null ? "—" : `about ${formatDuration(left)}`}</b>
      </span>
      <span title="Training speed over the last logged steps">
        <b data-testid="run-throughput">{formatThroughput(throughput(series))}</b>
      </span>
    </div>
  );
}

/** The memorizing warning, when the open run's losses show it. */
export function OverfittingWarning() {
  const train = useRuns((s) => s.derived.series.train_loss);
  const val = useRuns((s) => s.derived.series.val_loss);
  const text = useRuns((s) => isTextRun(s.job, s.datasets, s.uploads));
  const found = useMemo(() => detectOverfitting(train, val), [train, val]);
  if (!found) return null;
  return (
    <p className="runs-warn runs-overfitting" role="status" data-testid="run-overfitting">
      <span aria-hidden="true">⚠ </span>
      {overfittingAdvice(text)}
      <span className="runs-muted">
        {" "}(validation loss {found.val.map((v) => v.toPrecision(3)).join(" → ")} at steps {found.steps.join(", ")})
      </span>
    </p>
  );
}

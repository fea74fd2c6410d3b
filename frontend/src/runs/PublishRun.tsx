// "Publish to share links" for a run that has ended: anyone with a live link of its model
// may then watch it. Used on the open run in the drawer and in the Share dialog's list, so
// a run started without "Publish to share links" can be published afterwards.

import { useState } from "react";

import { api } from "../api/client";
import { describeError, runsStore } from "./store";

/** What publishing needs of a run: the drawer's run and the API's job both have it. */
export interface Publishable {
  id: number;
  published: boolean;
}

/** Publish a run or not; the drawer's copy of it follows. Returns its new state. */
export async function setRunPublished(id: number, published: boolean): Promise<boolean> {
  const job = await api.publishJob(id, published);
  const now = job.published;
  runsStore.setState((s) => ({
    job: s.job?.id === id ? { ...s.job, published: now } : s.job,
    runs: s.runs.map((r) => (r.id === id ? { ...r, published: now } : r)),
  }));
  return now;
}

export function PublishRun({ run, onChange }: { run: Publishable; onChange?(published: boolean): void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const toggle = async (published: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const now = await setRunPublished(run.id, published);
      onChange?.(now);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="runs-publish">
      <label className="runs-check" title="Anyone with a share link of this model can watch this run: its charts, samples and downloads.">
        <input type="checkbox" data-testid="publish-run" data-run={run.id} checked={run.published} disabled={busy}
          onChange={(e) => void toggle(e.target.checked)} />
        Published to share links
      </label>
      {error && <span className="runs-error" role="alert">{error}</span>}
    </span>
  );
}

// The "Dataset" tab: what data the open run trained on, from the manifest it recorded when
// it loaded its data (GET /api/jobs/{id}/manifest): name, source, licence, size, samples,
// SHA-256, the split and every preprocessing step; the manifest to download (Croissant
// JSON-LD) and the run's model card, rendered. Everything shown is text: a hostile upload
// name or source stays text (React escapes it; the card goes through Markdown, which
// escapes HTML and makes no links).
import { useEffect, useState } from "react";

import { api, ApiError } from "../api/client";
import type { DatasetManifest } from "../api/types";
import { bytes } from "../ui/format";
import { Markdown } from "../ui/Markdown";
import { describeError, useRuns } from "./store";

export const NOT_DECLARED = "not declared";

type Loaded<T> = { state: "loading" } | { state: "none"; message: string } | { state: "error"; message: string } | { state: "ok"; value: T };

/** A source that is a web address is shown as the address (not a link: it is the
 * uploader's text), anything else as it is; empty: not declared. */
export function sourceText(manifest: DatasetManifest): string {
  return manifest.url ?? (manifest["shipyard:source"] || NOT_DECLARED);
}

export function DatasetTab() {
  const job = useRuns((s) => s.job);
  const share = useRuns((s) => s.share) ?? undefined;
  const [manifest, setManifest] = useState<Loaded<DatasetManifest>>({ state: "loading" });
  const [card, setCard] = useState<Loaded<string> | null>(null);
  const id = job?.id;
  // A run records its manifest when it starts: ask again once it has.
  const started = job ? job.status !== "queued" : false;

  useEffect(() => {
    setCard(null);
    if (id === undefined) return;
    let live = true;
    setManifest({ state: "loading" });
    api.jobManifest(id, share).then(
      (value) => live && setManifest({ state: "ok", value }),
      (error: unknown) => live && setManifest(error instanceof ApiError && error.status === 404
        ? { state: "none", message: error.body.error }
        : { state: "error", message: describeError(error) }),
    );
    return () => {
      live = false;
    };
  }, [id, share, started]);

  if (!job) return <p className="runs-empty">Open or start a run to see the data it trained on.</p>;

  const showCard = async () => {
    if (card !== null) {
      setCard(null);
      return;
    }
    setCard({ state: "loading" });
    try {
      setCard({ state: "ok", value: (await api.jobCard(job.id, share)).markdown });
    } catch (error) {
      setCard({ state: "error", message: describeError(error) });
    }
  };

  return (
    <div className="dataset-tab" data-testid="dataset-tab">
      {manifest.state === "loading" && <p className="runs-muted">Loading the dataset manifest…</p>}
      {manifest.state === "none" && <p className="runs-empty">{manifest.message}</p>}
      {manifest.state === "error" && <p className="runs-error" role="alert">The dataset manifest could not be loaded: {manifest.message}</p>}
      {manifest.state === "ok" && <Facts manifest={manifest.value} />}
      <div className="runs-downloads">
        {manifest.state === "ok" && (
          <a className="button" href={api.jobManifestUrl(job.id, share)} download data-testid="manifest-download"
            title="The dataset manifest in the MLCommons Croissant format (JSON-LD)">
            Download manifest (Croissant)
          </a>
        )}
        <button type="button" aria-expanded={card?.state === "ok"} onClick={showCard} data-testid="model-card-toggle">
          {card === null ? "Model card" : "Hide model card"}
        </button>
      </div>
      {card?.state === "loading" && <p className="runs-muted">Loading the model card…</p>}
      {card?.state === "error" && <p className="runs-error" role="alert">The model card could not be loaded: {card.message}</p>}
      {card?.state === "ok" && (
        <section className="model-card" aria-label="Model card" data-testid="model-card">
          <Markdown text={card.value} />
        </section>
      )}
    </div>
  );
}

export function Facts({ manifest }: { manifest: DatasetManifest }) {
  const split = manifest["shipyard:split"];
  const vocab = manifest["shipyard:vocabulary"];
  const characters = manifest["shipyard:characters"];
  const licence = manifest.license || NOT_DECLARED;
  const source = sourceText(manifest);
  return (
    <>
      <dl className="dataset-facts">
        <dt>Name</dt>
        <dd data-testid="dataset-name">{manifest.name}</dd>
        <dt>Source</dt>
        <dd data-testid="dataset-source" className={source === NOT_DECLARED ? "runs-muted" : undefined}>{source}</dd>
        {manifest.citeAs && manifest.citeAs !== source && manifest.citeAs !== manifest["shipyard:source"] && (
          <>
            <dt>Cite as</dt>
            <dd>{manifest.citeAs}</dd>
          </>
        )}
        <dt>Licence</dt>
        <dd data-testid="dataset-licence" className={licence === NOT_DECLARED ? "runs-muted" : undefined}>{licence}</dd>
        <dt>Size</dt>
        <dd>{bytes(manifest["shipyard:sizeBytes"])} ({manifest["shipyard:sizeBytes"].toLocaleString("en")} bytes)</dd>
        <dt>Samples</dt>
        <dd data-testid="dataset-samples">
          {characters !== undefined ? `${characters.toLocaleString("en")} characters, ` : ""}
          {manifest["shipyard:samples"].toLocaleString("en")} {split.unit}
        </dd>
        {vocab && (
          <>
            <dt>Vocabulary</dt>
            <dd title={vocab.join(" ")}>{vocab.length} {manifest["shipyard:vocabularyOf"]}</dd>
          </>
        )}
        <dt>SHA-256</dt>
        <dd><code className="dataset-sha" data-testid="dataset-sha">{manifest["shipyard:sha256"]}</code> <span className="runs-muted">{manifest["shipyard:sha256Of"]}</span></dd>
        <dt>Split</dt>
        <dd data-testid="dataset-split">
          train {split.train.toLocaleString("en")} · validation {split.validation.toLocaleString("en")} {split.unit}
          <span className="runs-muted"> — {split.rule}</span>
        </dd>
      </dl>
      <h4 className="dataset-steps-title">Preprocessing</h4>
      <ol className="dataset-steps" data-testid="dataset-steps">
        {manifest["shipyard:preprocessing"].map((step, i) => <li key={i}>{step}</li>)}
      </ol>
    </>
  );
}



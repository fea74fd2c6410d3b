// The runs drawer under the canvas: tabs for the run (start, status, past runs), the loss
// chart, the attention maps, the text samples, what comes next (a character model) and the
// dataset (its manifest and the model card). The loss chart stays in view beside the other
// tabs whenever a run is open.

import "./runs.css";

import { useCallback, useEffect, useRef, useState } from "react";

import { Attention } from "./Attention";
import { BenchmarkResults } from "./Benchmark";
import { progressText } from "./benchmark";
import { Compare } from "./Compare";
import { DatasetTab } from "./DatasetTab";
import { fpgaSummary, useBenchmark, useFpga } from "./costs";
import { FpgaResults, FpgaSweep } from "./Fpga";
import { noAttentionYet } from "./attentionData";
import { clampHeight, defaultHeight, HEIGHT_KEY, heightForKey, maxHeight, MIN_HEIGHT, storedHeight } from "./drawerSize";
import { isEnded } from "./events";
import { LossChart } from "./LossChart";
import { NextChar } from "./NextChar";
import { NodeCosts } from "./NodeCosts";
import { RunPanel } from "./RunPanel";
import { OverfittingWarning } from "./RunProgress";
import { Samples } from "./Samples";
import { sortPaths } from "./series";
import { isTextRun, runsStore, useRuns, type RunTab } from "./store";
import { ordinal } from "./waiting";

export interface RunDrawerProps {
  graphId: number | null;
  shareToken: string | null;
  readOnly: boolean;
  starterDataset?: string;
  ensureSaved(): Promise<{ graphId: number; version: number } | null>;
  open: boolean;
  onOpenChange(open: boolean): void;
  /** whether the graph has attention modules (MultiHeadAttention blocks) */
  hasAttention?: boolean;
}

function readHeight(): number {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(HEIGHT_KEY);
  } catch {
    // not remembered
  }
  return storedHeight(stored, window.innerHeight);
}

function rememberHeight(height: number): void {
  try {
    localStorage.setItem(HEIGHT_KEY, String(Math.round(height)));
  } catch {
    // not remembered
  }
}

/** The window's inner height, followed. */
function useWindowHeight(): number {
  const [h, setH] = useState(() => window.innerHeight);
  useEffect(() => {
    const on = () => setH(window.innerHeight);
    window.addEventListener("resize", on);
    return () => window.removeEventListener("resize", on);
  }, []);
  return h;
}

function AttentionTab({ hasAttention }: { hasAttention: boolean }) {
  const attention = useRuns((s) => s.derived.attention);
  const chosen = useRuns((s) => s.attentionPath);
  const job = useRuns((s) => s.job);
  const paths = sortPaths(Object.keys(attention));
  if (chosen && !paths.includes(chosen)) paths.unshift(chosen);
  const path = chosen ?? paths[0] ?? null;
  if (!path) {
    const interval = job?.config.attention_interval;
    return (
      <p className="runs-empty" data-testid="attention-empty">
        {noAttentionYet({
          hasAttention,
          interval: typeof interval === "number" ? interval : null,
          total: job?.total_steps ?? 0,
          ended: isEnded(job?.status),
        })}
      </p>
    );
  }
  return (
    <div className="attn-tab">
      <label className="runs-inline">
        <span className="runs-muted">module</span>
        <select value={path} onChange={(e) => runsStore.getState().setAttentionPath(e.target.value)} aria-label="Attention module">
          {paths.map((p) => (
            <option key={p} value={p}>{p}</option>
          ))}
        </select>
      </label>
      <Attention key={path} path={path} />
    </div>
  );
}

export function RunDrawer({ graphId, shareToken, readOnly, starterDataset, ensureSaved, open, onOpenChange, hasAttention = true }: RunDrawerProps) {
  const tab = useRuns((s) => s.tab);
  const job = useRuns((s) => s.job);
  const hasSamples = useRuns((s) => s.derived.samples.length > 0);
  const textRun = useRuns((s) => isTextRun(s.job, s.datasets, s.uploads));
  const openRequests = useRuns((s) => s.openRequests);
  const mode = useRuns((s) => s.mode);
  const { progress } = useBenchmark();
  const fpga = useFpga();
  const [wanted, setHeight] = useState(readHeight);
  const windowHeight = useWindowHeight();
  const height = clampHeight(wanted, windowHeight); // a smaller window squeezes, not forgets
  const seenRequests = useRef(openRequests);
  const onOpenChangeRef = useRef(onOpenChange);
  onOpenChangeRef.current = onOpenChange;

  useEffect(() => {
    runsStore.getState().setContext({ graphId, share: shareToken, readOnly });
  }, [graphId, shareToken, readOnly]);

  useEffect(() => {
    void runsStore.getState().loadCatalog();
  }, [readOnly]);

  // A click on a node's mini heatmap asks for the drawer.
  useEffect(() => {
    if (openRequests !== seenRequests.current) {
      seenRequests.current = openRequests;
      onOpenChangeRef.current(true);
    }
  }, [openRequests]);

  const startResize = useCallback((e: React.PointerEvent<HTMLDivElement>) => {
    if (e.button !== 0) return;
    e.preventDefault();
    const startY = e.clientY;
    const startHeight = height;
    let last = startHeight;
    const move = (m: PointerEvent) => {
      last = clampHeight(startHeight + startY - m.clientY, window.innerHeight);
      setHeight(last);
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      rememberHeight(last);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }, [height]);

  const resizeByKey = (e: React.KeyboardEvent<HTMLDivElement>) => {
    const next = heightForKey(e.key, e.shiftKey, height, window.innerHeight);
    if (next === null) return;
    e.preventDefault();
    setHeight(next);
    rememberHeight(next);
  };

  if (!open) return null;

  const showSamples = textRun || hasSamples;
  const benchmarks = mode !== "train";
  const tabs: { id: RunTab; label: string }[] = mode === "fpga" ? [
    { id: "run", label: "Run" },
    { id: "results", label: "Results" },
    { id: "sweep", label: "Sweep" },
  ] : benchmarks ? [
    { id: "run", label: "Run" },
    { id: "results", label: "Results" },
    { id: "costs", label: "Node costs" },
    { id: "compare", label: "Compare" },
  ] : [
    { id: "run", label: "Run" },
    { id: "loss", label: "Loss" },
    { id: "attention", label: "Attention" },
    ...(showSamples ? [{ id: "samples" as RunTab, label: "Samples" }] : []),
    ...(textRun && job ? [{ id: "next" as RunTab, label: "Next character" }] : []),
    { id: "dataset", label: "Dataset" },
  ];
  const current: RunTab = tabs.some((t) => t.id === tab) ? tab : "run";
  const sideChart = job !== null && !benchmarks && current !== "loss";
  const select = (id: RunTab, focus = false) => {
    runsStore.getState().setTab(id);
    if (focus) setTimeout(() => document.getElementById(`runs-tab-${id}`)?.focus());
  };

  return (
    <section className="runs-drawer run-drawer" style={{ height }} aria-label="Runs">
      <div
        className="runs-resize"
        role="separator"
        aria-orientation="horizontal"
        aria-label="Resize the runs drawer"
        aria-valuenow={height}
        aria-valuemin={MIN_HEIGHT}
        aria-valuemax={maxHeight(windowHeight)}
        aria-valuetext={`${height} pixels high`}
        title="Drag to resize (or focus and use ↑ ↓, Home, End); double-click for the default height"
        data-testid="runs-resize"
        tabIndex={0}
        onPointerDown={startResize}
        onKeyDown={resizeByKey}
        onDoubleClick={() => {
          const h = defaultHeight(window.innerHeight);
          setHeight(h);
          rememberHeight(h);
        }}
      >
        <span className="runs-resize-grip" aria-hidden="true" />
      </div>
      <header className="runs-head">
        <div className="runs-tabs" role="tablist" aria-label="Run views">
          {tabs.map((t) => (
            <button
              key={t.id}
              type="button"
              role="tab"
              id={`runs-tab-${t.id}`}
              aria-selected={current === t.id}
              aria-controls="runs-tabpanel"
              tabIndex={current === t.id ? 0 : -1}
              onClick={() => select(t.id)}
              onKeyDown={(e) => {
                const i = tabs.findIndex((x) => x.id === current);
                if (e.key === "ArrowRight") select(tabs[(i + 1) % tabs.length].id, true);
                else if (e.key === "ArrowLeft") select(tabs[(i - 1 + tabs.length) % tabs.length].id, true);
              }}
            >
              {t.label}
            </button>
          ))}
        </div>
        {job && (
          <span className="runs-head-summary runs-muted runs-num">
            <span className={`runs-dot runs-status-${job.status}`} aria-hidden="true" />
            #{job.id} · {mode === "fpga" ? fpgaSummary(fpga) ?? job.status : benchmarks ? (progress ? progressText(progress) : job.status) : `${job.step}/${job.total_steps}`}
            {!isEnded(job.status) && job.status === "queued" && job.position ? ` · ${ordinal(job.position)} in queue` : ""}
          </span>
        )}
        {readOnly && <span className="runs-muted">read-only: published runs</span>}
        <button type="button" className="icon runs-close" aria-label="Close the runs drawer" title="Close" onClick={() => onOpenChange(false)}>
          ▾
        </button>
      </header>
      <div className="runs-body">
        <div className="runs-main" id="runs-tabpanel" role="tabpanel" aria-labelledby={`runs-tab-${current}`}>
          {current === "run" && (
            <RunPanel graphId={graphId} readOnly={readOnly} starterDataset={starterDataset} ensureSaved={ensureSaved} />
          )}
          {current === "loss" && (job ? <><OverfittingWarning /><LossChart /></> : <p className="runs-empty">Open or start a run to see its loss.</p>)}
          {current === "attention" && (job ? <AttentionTab hasAttention={hasAttention} /> : <p className="runs-empty">Open or start a run to see its attention maps.</p>)}
          {current === "samples" && <Samples />}
          {current === "next" && <NextChar />}
          {current === "dataset" && <DatasetTab />}
          {current === "results" && (mode === "fpga" ? <FpgaResults /> : <BenchmarkResults />)}
          {current === "sweep" && <FpgaSweep />}
          {current === "costs" && <NodeCosts />}
          {current === "compare" && <Compare />}
        </div>
        {sideChart && (
          <aside className="runs-side" aria-label="Loss">
            <LossChart compact />
          </aside>
        )}
      </div>
    </section>
  );
}

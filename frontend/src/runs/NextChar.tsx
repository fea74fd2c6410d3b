// "Next character": a character model's five likeliest next characters after a prompt the
// user types, from the open run's weights, and where each attention head's last position
// looked over the prompt's characters (one strip per head, darker: more weight).

import { useEffect, useRef, useState } from "react";

import { api, ApiError } from "../api/client";
import type { NextChars } from "../api/types";
import { charLabel, percent } from "./explain";
import { describeError, useRuns } from "./store";

const WAIT_MS = 250; // after the last keystroke, before asking
const MAX_PROMPT = 10_000; // what the server takes (the model reads its last T)

type Answer = { prompt: string; result?: NextChars; error?: string; ms?: number };

export function NextChar() {
  const job = useRuns((s) => s.job);
  const share = useRuns((s) => s.share);
  const [prompt, setPrompt] = useState("ROMEO:\n");
  const [answer, setAnswer] = useState<Answer | null>(null);
  const jobId = job?.id;
  const ready = job ? job.status === "succeeded" || job.status === "cancelled" || job.status === "failed" || job.step > 0 : false;
  const asked = useRef(0);

  useEffect(() => {
    if (jobId === undefined || !ready || !prompt) return;
    const controller = new AbortController();
    const token = ++asked.current;
    const timer = setTimeout(() => {
      const began = performance.now();
      api.jobNext(jobId, prompt, share ?? undefined, controller.signal).then(
        (result) => token === asked.current && setAnswer({ prompt, result, ms: performance.now() - began }),
        (error) => {
          if ((error as Error).name === "AbortError") return;
          if (token === asked.current) setAnswer({ prompt, error: error instanceof ApiError ? error.body.error : describeError(error) });
        },
      );
    }, WAIT_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [jobId, share, prompt, ready]);

  if (!job) return <p className="runs-empty">Open a run of a character model to ask it what comes next.</p>;
  const result = answer?.prompt === prompt ? answer.result : answer?.result;
  const error = answer?.prompt === prompt ? answer.error : undefined;
  return (
    <div className="next" data-testid="next-char">
      <label className="next-prompt">
        <span className="runs-muted">Prompt: the model continues it from the weights of run #{job.id}</span>
        <textarea
          value={prompt}
          maxLength={MAX_PROMPT}
          rows={2}
          spellCheck={false}
          aria-label="Prompt"
          data-testid="next-prompt"
          onChange={(e) => setPrompt(e.target.value)}
        />
      </label>
      {!prompt && <p className="runs-empty">Type a few characters.</p>}
      {error && <p className="runs-error" role="alert">{error}</p>}
      {result && !error && (
        <>
          {result.truncated && (
            <p className="runs-warn">The model reads {result.context} characters at a time: it used the last {result.context} of your {prompt.length}.</p>
          )}
          <div className="next-cols">
            <section aria-label="Next characters">
              <h4>Next character{answer?.ms !== undefined ? <span className="runs-muted runs-num"> · {Math.round(answer.ms)} ms</span> : null}</h4>
              <ol className="next-top" data-testid="next-top">
                {result.top.map((t, i) => (
                  <li key={i}>
                    <span className="next-char mono" title={JSON.stringify(t.char)}>{charLabel(t.char)}</span>
                    <span className="next-bar"><span style={{ width: `${Math.max(t.p * 100, 0.5)}%` }} /></span>
                    <span className="runs-num">{percent(t.p)}</span>
                  </li>
                ))}
              </ol>
            </section>
            {result.heads.length > 0 && (
              <section aria-label="Where the heads looked" className="next-heads">
                <h4>Where each head looked <span className="runs-muted">from the last character</span></h4>
                {result.heads.map((h) => (
                  <div key={`${h.module}:${h.head}`} className="next-strip" data-testid="next-head">
                    <span className="runs-muted mono next-strip-name">{h.module} · {h.head}</span>
                    <span className="next-cells">
                      {h.tokens.map((c, i) => (
                        <span
                          key={i}
                          className="mono"
                          style={{ background: `color-mix(in srgb, var(--accent) ${Math.round(Math.sqrt(h.weights[i]) * 100)}%, transparent)` }}
                          title={`position ${i} (${JSON.stringify(c)}): ${h.weights[i].toFixed(3)}`}
                        >
                          {charLabel(c)}
                        </span>
                      ))}
                    </span>
                  </div>
                ))}
              </section>
            )}
          </div>
        </>
      )}
    </div>
  );
}

// The text a character model wrote at each evaluation, newest first.

import "./runs.css";

import type { SampleEvent } from "../api/types";
import { useRuns } from "./store";

export function Samples({ samples: given }: { samples?: SampleEvent[] }) {
  const stored = useRuns((s) => s.derived.samples);
  const samples = given ?? stored;
  return (
    <div className="samples" data-testid="samples">
      {samples.length === 0 ? (
        <p className="runs-empty">
          No samples yet. A text run writes one at each evaluation (every <code>eval_interval</code> steps).
        </p>
      ) : (
        <ol className="samples-list" aria-label="Text samples, newest first">
          {samples.slice().reverse().map((s) => (
            <li key={s.seq}>
              <div className="samples-step runs-num">step {s.step}</div>
              <pre className="samples-text">{s.text}</pre>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

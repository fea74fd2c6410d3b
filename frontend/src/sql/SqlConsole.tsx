// The SQL console beside the runs drawer: a script, Run (Ctrl/Cmd+Enter), and what came back:
// a table per statement (a row that names a node selects it on the canvas), the change a
// script made (applied to the canvas as one undo step by the store), or why it was refused,
// with the statement, the position and the engine's problems by node. Completion of table
// and column names from GET /api/sql/schema; the schema's examples one click away; Ctrl/Cmd+
// ↑/↓ walks the history.
import "./sql.css";

import { useEffect, useMemo, useRef, useState } from "react";

import { useRuns } from "../runs/store";
import { useEditor } from "../store/editor";
import type { SqlChange, SqlErrorBody, SqlResult, SqlStatement } from "./api";
import { type Suggestion, accept, suggest } from "./complete";
import { rowNode, selectTopLevel, useSql } from "./store";

export function SqlConsole() {
  const open = useSql((s) => s.open);
  if (!open) return null;
  return <ConsolePanel />;
}

function ConsolePanel() {
  const job = useSql((s) => s.job);
  const running = useSql((s) => s.running);
  const readOnly = useEditor((s) => s.readOnly);
  // A run's model, or a saved version with stored weights: the weight tables are there too.
  const versionWeights = useEditor((s) => s.graph?.weights === true);
  const trained = job !== null || versionWeights;
  const schema = useSql((s) => (trained ? s.schemas.trained : s.schemas.plain));
  const schemaError = useSql((s) => s.schemaError);

  useEffect(() => {
    void useSql.getState().loadSchema(trained);
  }, [trained]);

  // The server gives the examples that fit: a trained model's include the weight tables'.
  const examples = schema?.examples ?? [];
  return (
    <section className="sql-console" aria-label="SQL console" data-testid="sql-console">
      <header className="sql-head">
        <strong>SQL</strong>
        <Target />
        {readOnly && <span className="muted small">read-only: SELECT only</span>}
        <span className="spacer" />
        <button
          type="button"
          className="primary"
          data-testid="sql-run"
          disabled={running}
          title="Run (Ctrl/Cmd+Enter)"
          onClick={() => void useSql.getState().run()}
        >
          {running ? "Running…" : "Run"}
        </button>
        <button type="button" className="icon" aria-label="Close the SQL console" title="Close (Q)" onClick={() => useSql.getState().setOpen(false)}>
          ▾
        </button>
      </header>
      <div className="sql-body">
        <div className="sql-input">
          {examples.length > 0 && (
            <div className="sql-examples" aria-label="Examples" data-testid="sql-examples">
              {examples.map((e) => (
                <button
                  key={e.title}
                  type="button"
                  className="sql-chip"
                  title={e.sql}
                  onClick={() => {
                    useSql.getState().setText(e.sql);
                    useSql.setState((s) => ({ focusRequests: s.focusRequests + 1 }));
                  }}
                >
                  {e.title}
                </button>
              ))}
            </div>
          )}
          <ScriptInput />
          {schemaError && <p className="muted small">{schemaError}</p>}
        </div>
        <div className="sql-output" data-testid="sql-output" aria-live="polite">
          <Outcome />
        </div>
      </div>
    </section>
  );
}

/** Which model the script runs on: the editor's, or the trained model of the finished
 * training run open in the runs drawer. */
function Target() {
  const job = useSql((s) => s.job);
  const open = useRuns((s) => s.job);
  const runnable = open && open.kind === "train" && open.status === "succeeded" ? open : null;
  useEffect(() => {
    // The run the console was on is no longer the drawer's: back to the graph.
    if (job !== null && runnable?.id !== job) useSql.getState().setJob(null);
  }, [job, runnable?.id]);
  if (!runnable) return null;
  return (
    <select
      aria-label="Run on"
      data-testid="sql-target"
      value={job === null ? "graph" : String(job)}
      onChange={(e) => useSql.getState().setJob(e.target.value === "graph" ? null : Number(e.target.value))}
    >
      <option value="graph">this model</option>
      <option value={runnable.id}>run #{runnable.id}'s trained model</option>
    </select>
  );
}

function ScriptInput() {
  const text = useSql((s) => s.text);
  const job = useSql((s) => s.job);
  const schema = useSql((s) => (job !== null ? s.schemas.trained : s.schemas.plain));
  const focusRequests = useSql((s) => s.focusRequests);
  const area = useRef<HTMLTextAreaElement>(null);
  const [suggestions, setSuggestions] = useState<Suggestion[]>([]);
  const [active, setActive] = useState(0);

  useEffect(() => {
    area.current?.focus();
  }, [focusRequests]);

  const refresh = (value: string, caret: number) => {
    setSuggestions(suggest(value, caret, schema));
    setActive(0);
  };

  const take = (s: Suggestion) => {
    const el = area.current!;
    const next = accept(el.value, el.selectionStart, s.name);
    useSql.getState().setText(next.text);
    setSuggestions([]);
    // The caret after the name, once React has written the new value.
    requestAnimationFrame(() => el.setSelectionRange(next.caret, next.caret));
  };

  const onKeyDown = (e: React.KeyboardEvent<HTMLTextAreaElement>) => {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key === "Enter") {
      e.preventDefault();
      setSuggestions([]);
      void useSql.getState().run();
    } else if (mod && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      setSuggestions([]);
      useSql.getState().browse(e.key === "ArrowUp" ? -1 : 1);
    } else if (suggestions.length && !mod) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        setActive((a) => (a + step + suggestions.length) % suggestions.length);
      } else if (e.key === "Tab" || e.key === "Enter") {
        e.preventDefault();
        take(suggestions[active]);
      } else if (e.key === "Escape") {
        e.preventDefault();
        setSuggestions([]);
      }
    }
  };

  return (
    <div className="sql-script">
      <textarea
        ref={area}
        className="sql-text"
        data-testid="sql-text"
        aria-label="SQL"
        spellCheck={false}
        autoComplete="off"
        placeholder={"SELECT id, type, params_count FROM nodes ORDER BY flops DESC LIMIT 5\n\nCtrl/Cmd+Enter runs it"}
        value={text}
        onChange={(e) => {
          useSql.getState().setText(e.target.value);
          refresh(e.target.value, e.target.selectionStart);
        }}
        onKeyDown={onKeyDown}
        onBlur={() => setSuggestions([])}
        role="combobox"
        aria-expanded={suggestions.length > 0}
        aria-controls="sql-suggestions"
        aria-autocomplete="list"
      />
      {suggestions.length > 0 && (
        <ul className="sql-suggestions" id="sql-suggestions" role="listbox" data-testid="sql-suggestions">
          {suggestions.map((s, i) => (
            <li
              key={s.name}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : ""}
              // Before the text area's blur: the pick must land first.
              onMouseDown={(e) => {
                e.preventDefault();
                take(s);
              }}
            >
              <span className="mono">{s.name}</span> <span className="muted small">{s.detail}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Outcome() {
  const outcome = useSql((s) => s.outcome);
  const running = useSql((s) => s.running);
  if (!outcome) {
    return <p className="muted sql-empty">{running ? "Running…" : "Results show here. A change redraws the canvas and is one undo step."}</p>;
  }
  return (
    <div className={running ? "sql-stale" : ""}>
      {outcome.kind === "error" ? <ErrorView error={outcome.error} /> : <ResultView result={outcome.result} applied={outcome.applied} />}
    </div>
  );
}

function ResultView({ result, applied }: { result: SqlResult; applied: boolean }) {
  const several = result.statements.length > 1;
  return (
    <div data-testid="sql-result">
      {result.change && <ChangeView change={result.change} result={result} applied={applied} />}
      {result.derived && (
        <p className="sql-derived">
          A derived model was made from the run:{" "}
          <a href={result.derived.url} data-testid="sql-derived">open it (v{result.derived.version}) ›</a>
        </p>
      )}
      {result.statements.map((s, i) =>
        several || s.columns.length ? (
          <StatementView key={i} statement={s} index={i} heading={several} />
        ) : (
          <p key={i} className="small" data-testid="sql-statement">
            {s.kind.toUpperCase()}: {s.changed} row{s.changed === 1 ? "" : "s"} changed
          </p>
        ))}
      <p className="muted small sql-ms">{result.ms.toFixed(1)} ms</p>
    </div>
  );
}

function StatementView({ statement, index, heading }: { statement: SqlStatement; index: number; heading: boolean }) {
  return (
    <div className="sql-statement" data-testid="sql-statement">
      {heading && (
        <p className="sql-statement-head">
          <span className="muted">{index + 1}.</span> <code>{statement.sql}</code>
          {!statement.columns.length && <span className="muted"> · {statement.changed} row{statement.changed === 1 ? "" : "s"} changed</span>}
        </p>
      )}
      {statement.columns.length > 0 && <ResultTable columns={statement.columns} rows={statement.rows} truncated={statement.truncated} />}
    </div>
  );
}

function cell(value: unknown): { text: string; isNull: boolean } {
  if (value === null || value === undefined) return { text: "NULL", isNull: true };
  if (typeof value === "object") return { text: JSON.stringify(value), isNull: false };
  return { text: String(value), isNull: false };
}

export function ResultTable({ columns, rows, truncated }: { columns: string[]; rows: unknown[][]; truncated: boolean }) {
  const doc = useEditor((s) => s.doc);
  const picks = useMemo(() => rows.map((row) => rowNode(columns, row, doc)), [columns, rows, doc]);
  if (rows.length === 0) return <p className="muted sql-none">No rows.</p>;
  return (
    <>
      <div className="sql-table-wrap">
        <table className="sql-table" data-testid="sql-table">
          <thead>
            <tr>{columns.map((c, i) => <th key={i} scope="col">{c}</th>)}</tr>
          </thead>
          <tbody>
            {rows.map((row, r) => {
              const node = picks[r];
              return (
                <tr
                  key={r}
                  className={node ? "sql-pick" : undefined}
                  data-node={node ?? undefined}
                  title={node ? `Select ${node} on the canvas` : undefined}
                  onClick={node ? () => selectTopLevel(node) : undefined}
                >
                  {row.map((value, c) => {
                    const { text, isNull } = cell(value);
                    return (
                      <td key={c} className={`${typeof value === "number" ? "num" : ""}${isNull ? " muted" : ""}`} title={text.length > 40 ? text : undefined}>
                        {text}
                      </td>
                    );
                  })}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p className="muted small" data-testid="sql-count">
        {rows.length} row{rows.length === 1 ? "" : "s"}
        {truncated && <strong className="sql-truncated" data-testid="sql-truncated"> · truncated: only the first {rows.length} rows came (the row limit)</strong>}
      </p>
    </>
  );
}

function names(paths: string[]): string {
  return paths.length > 6 ? `${paths.slice(0, 6).join(", ")} and ${paths.length - 6} more` : paths.join(", ");
}

function ChangeView({ change, result, applied }: { change: SqlChange; result: SqlResult; applied: boolean }) {
  const parts: string[] = [];
  if (change.nodes.added.length) parts.push(`added ${names(change.nodes.added)}`);
  if (change.nodes.changed.length) parts.push(`changed ${names(change.nodes.changed)}`);
  if (change.nodes.removed.length) parts.push(`removed ${names(change.nodes.removed)}`);
  const edges = change.edges.added.length + change.edges.removed.length;
  if (edges) parts.push(`edges +${change.edges.added.length} −${change.edges.removed.length}`);
  if (change.model.length) parts.push(`model ${change.model.join(", ")}`);
  let where: string;
  if (result.derived) where = "";
  else if (!applied) where = " Not applied to the canvas.";
  else if (result.version) where = ` Saved as version ${result.version.number}; Undo takes it back.`;
  else where = " Not saved yet; Undo takes it back.";
  return (
    <p className="sql-change" data-testid="sql-change">
      <strong>{parts.length ? parts.join("; ") : "nothing changed"}</strong>.{where}
    </p>
  );
}

/** Where `position` falls in `sql`: the line it is on and the column in it. */
function lineAndColumn(sql: string, position: number): { line: string; column: number; number: number } {
  const at = Math.max(0, Math.min(position, sql.length));
  const start = sql.lastIndexOf("\n", at - 1) + 1;
  const endAt = sql.indexOf("\n", at);
  const line = sql.slice(start, endAt === -1 ? undefined : endAt);
  return { line, column: at - start, number: sql.slice(0, start).split("\n").length };
}

export function ErrorView({ error }: { error: SqlErrorBody }) {
  const sql = error.sql ?? null;
  const position = typeof error.position === "number" ? error.position : null;
  const where = sql !== null && position !== null ? lineAndColumn(sql, position) : null;
  const problems = error.problems ?? [];
  return (
    <div className="sql-error" data-testid="sql-error">
      <p role="alert"><strong>Refused:</strong> {error.error}</p>
      {(typeof error.statement === "number" || sql) && (
        <p className="small">
          {typeof error.statement === "number" && <>in statement {error.statement + 1}</>}
          {position !== null && <> at character {position + 1}</>}
          {where && where.number > 1 && <> (line {where.number})</>}
          {" · nothing was changed"}
        </p>
      )}
      {sql && (
        <pre className="sql-at" data-testid="sql-error-at">
          {where ? `${where.line}\n${" ".repeat(where.column)}^` : sql}
        </pre>
      )}
      {problems.length > 0 && (
        <ul className="sql-problems" data-testid="sql-problems">
          {problems.map((p, i) => (
            <li key={i}>
              {p.node ? <ProblemNode path={p.node} /> : <span className="muted">the model</span>}
              {p.field && <span className="muted"> ({p.field})</span>}: {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A node a problem names: a link that selects it when the canvas has it. */
function ProblemNode({ path }: { path: string }) {
  const top = path.split("/")[0];
  const exists = useEditor((s) => s.doc.nodes.some((n) => n.id === top));
  if (!exists) return <code>{path}</code>;
  return (
    <button type="button" className="link mono" title={`Select ${top} on the canvas`} onClick={() => selectTopLevel(top)}>
      {path}
    </button>
  );
}

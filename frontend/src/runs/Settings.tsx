// A run's settings as a form, rendered from the served schema by the block form's code
// (SchemaField): the training, benchmark and FPGA forms use it. A setting that maps names to
// text (an FPGA run's precision per node) gets its own small editor: rows of a graph node
// and its text.
import { useId, useState } from "react";

import { SchemaField, type FieldSchema } from "../editor/SchemaField";
import type { Setting } from "./config";

/** Whether a setting is a map of names to strings ({"fc2": "ap_fixed<18,8>"}). */
export function isTextMap(schema: FieldSchema): boolean {
  const values = schema.additionalProperties;
  return schema.type === "object" && typeof values === "object" && values.type === "string";
}

type Row = [key: string, text: string];

function toRows(value: unknown): Row[] {
  if (!value || typeof value !== "object" || Array.isArray(value)) return [];
  return Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : String(v)]);
}

/** The map the rows give: rows with a key and a text; undefined (the default) for none. */
export function rowsToMap(rows: readonly Row[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [key, text] of rows) if (key && text.trim()) out[key] = text.trim();
  return Object.keys(out).length ? out : undefined;
}

/** A map of names to text: each row a name picked from `keys` and its text. */
export function MapField({ id, testId, name, label, schema, value, problem, keys, onChange }: {
  id: string;
  name: string;
  testId: string;
  label: string;
  schema: FieldSchema;
  value: unknown;
  problem?: string;
  /** the names a row may take (the graph's nodes) */
  keys: readonly string[];
  onChange(value: Record<string, string> | undefined): void;
}) {
  const [rows, setRows] = useState<Row[]>(() => toRows(value));
  const put = (next: Row[]) => {
    setRows(next);
    onChange(rowsToMap(next));
  };
  const free = keys.filter((k) => !rows.some(([key]) => key === k));
  return (
    <div className={`field field-map ${problem ? "field-problem" : ""}`} data-field={name} data-testid={testId}>
      <div className="field-row">
        <label htmlFor={`${id}-add`} title={schema.description}>{label}</label>
        <button
          type="button"
          id={`${id}-add`}
          className="link"
          data-testid={`${testId}-add`}
          disabled={!free.length}
          title={free.length ? "Give one node its own value" : "Every node has a row"}
          onClick={() => put([...rows, [free[0], ""]])}
        >
          + node
        </button>
      </div>
      {rows.map(([key, text], i) => (
        <div className="field-row field-map-row" key={i}>
          <select
            aria-label={`${label}: node`}
            data-testid={`${testId}-node`}
            value={key}
            onChange={(e) => put(rows.map((r, j) => (j === i ? [e.target.value, r[1]] : r)))}
          >
            {[key, ...free].map((k) => <option key={k} value={k}>{k}</option>)}
          </select>
          <input
            type="text"
            aria-label={`${label}: value for ${key}`}
            data-testid={`${testId}-value`}
            value={text}
            placeholder="e.g. ap_fixed<18,8>"
            onChange={(e) => put(rows.map((r, j) => (j === i ? [r[0], e.target.value] : r)))}
          />
          <button type="button" className="icon" title="Remove this row" aria-label={`Remove ${key}`} onClick={() => put(rows.filter((_, j) => j !== i))}>
            ×
          </button>
        </div>
      ))}
      {problem && <div className="field-error" role="alert">{problem}</div>}
    </div>
  );
}

/** The settings of a run, rendered from the served schema by the block form's code. */
export function Settings({ settings, values, problems, onChange, onInvalid, nodeIds = [] }: {
  settings: Setting[];
  values: Record<string, unknown>;
  problems: Record<string, string>;
  onChange(name: string, value: unknown): void;
  onInvalid(name: string, error: string | null): void;
  /** the graph's top-level nodes, for settings keyed by node */
  nodeIds?: readonly string[];
}) {
  const id = useId();
  return (
    <div className="runs-grid runs-settings">
      {settings.map(([name, schema]) => (isTextMap(schema) ? (
        <MapField
          key={name}
          id={`${id}-${name}`}
          testId={`run-${name}`}
          name={name}
          label={schema.title ?? name}
          schema={schema}
          value={values[name]}
          problem={problems[name]}
          keys={nodeIds}
          onChange={(v) => onChange(name, v)}
        />
      ) : (
        <SchemaField
          key={name}
          id={`${id}-${name}`}
          testId={`run-${name}`}
          name={name}
          label={schema.title ?? name}
          schema={schema}
          value={values[name]}
          problem={problems[name]}
          readOnly={false}
          variant="settings"
          onChange={(v) => onChange(name, v)}
          onInvalid={(e) => onInvalid(name, e)}
        />
      )))}
    </div>
  );
}

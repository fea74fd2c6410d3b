// A block's parameter form, generated from its JSON Schema: numbers with their ranges,
// enums as selects, booleans as switches, lists as "3, 32, 32". A value the schema refuses
// is shown with its reason and not applied; the server's problems light up their field.
import { useEffect, useRef, useState } from "react";

import type { Problem } from "../api/types";
import { useEditor } from "../store/editor";

export interface FieldSchema {
  type?: string | string[];
  enum?: unknown[];
  anyOf?: FieldSchema[];
  items?: FieldSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
  description?: string;
  title?: string;
}

interface ObjectSchema {
  properties?: Record<string, FieldSchema>;
}

type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

function kind(schema: FieldSchema): "boolean" | "integer" | "number" | "enum" | "text" {
  if (schema.enum) return "enum";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "integer") return "integer";
  if (schema.type === "number") return "number";
  return "text";
}

function checkNumber(n: number, schema: FieldSchema): string | null {
  if (schema.type === "integer" && !Number.isInteger(n)) return "must be a whole number";
  if (schema.minimum !== undefined && n < schema.minimum) return `must be at least ${schema.minimum}`;
  if (schema.maximum !== undefined && n > schema.maximum) return `must be at most ${schema.maximum}`;
  if (schema.exclusiveMinimum !== undefined && n <= schema.exclusiveMinimum) return `must be more than ${schema.exclusiveMinimum}`;
  if (schema.exclusiveMaximum !== undefined && n >= schema.exclusiveMaximum) return `must be less than ${schema.exclusiveMaximum}`;
  return null;
}

/** Parse what was typed against one schema (no anyOf). */
function parseOne(text: string, schema: FieldSchema): Parsed {
  const t = text.trim();
  if (schema.type === "null") return t === "" ? { ok: true, value: null } : { ok: false, error: "" };
  if (schema.enum) {
    return schema.enum.includes(t) ? { ok: true, value: t } : { ok: false, error: `one of ${schema.enum.join(", ")}` };
  }
  if (schema.type === "integer" || schema.type === "number") {
    if (t === "" || Number.isNaN(Number(t))) return { ok: false, error: "a number" };
    const n = Number(t);
    const problem = checkNumber(n, schema);
    return problem ? { ok: false, error: problem } : { ok: true, value: n };
  }
  if (schema.type === "array") {
    const parts = t.replace(/^\[|\]$/g, "").split(/[\s,×x]+/).filter(Boolean);
    if (parts.length === 0) return { ok: false, error: "a list of numbers such as 3, 32, 32" };
    const item = schema.items ?? { type: "integer" };
    const values: number[] = [];
    for (const p of parts) {
      const n = Number(p);
      if (Number.isNaN(n)) return { ok: false, error: `“${p}” is not a number` };
      const problem = checkNumber(n, item);
      if (problem) return { ok: false, error: `each entry ${problem}` };
      values.push(n);
    }
    if (schema.minItems !== undefined && values.length < schema.minItems) return { ok: false, error: `at least ${schema.minItems} entries` };
    if (schema.maxItems !== undefined && values.length > schema.maxItems) return { ok: false, error: `at most ${schema.maxItems} entries` };
    return { ok: true, value: values };
  }
  if (schema.type === "string") return { ok: true, value: t };
  return { ok: false, error: "not understood" };
}

/** Parse a typed value for a field; empty means "use the default". */
export function parseField(text: string, schema: FieldSchema): Parsed {
  if (text.trim() === "" && !(schema.anyOf?.some((s) => s.type === "null"))) return { ok: true, value: undefined };
  const options = schema.anyOf ?? [schema];
  const errors: string[] = [];
  for (const option of options) {
    const parsed = parseOne(text, option);
    if (parsed.ok) return parsed;
    if (parsed.error) errors.push(parsed.error);
  }
  return { ok: false, error: `expected ${errors.join(", or ")}` };
}

export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

function Field({ nodeId, name, schema, value, problem, readOnly }: {
  nodeId: string; name: string; schema: FieldSchema; value: unknown; problem?: Problem; readOnly: boolean;
}) {
  const setParam = useEditor((s) => s.setParam);
  const beginGesture = useEditor((s) => s.beginGesture);
  const endGesture = useEditor((s) => s.endGesture);
  const shown = value === undefined ? schema.default : value;
  const [text, setText] = useState(formatValue(shown));
  const [error, setError] = useState<string | null>(null);
  const typing = useRef(false);
  useEffect(() => {
    if (typing.current) return; // never rewrite what is being typed
    setText(formatValue(value === undefined ? schema.default : value));
    setError(null);
  }, [value, schema.default, nodeId]);

  const label = name;
  const id = `param-${nodeId}-${name}`;
  const k = kind(schema);
  const explicit = value !== undefined;
  const help = schema.description;
  const commit = (raw: string) => {
    const parsed = parseField(raw, schema);
    if (!parsed.ok) {
      setError(parsed.error);
      return;
    }
    setError(null);
    setParam(nodeId, name, parsed.value);
  };

  let control;
  if (k === "boolean") {
    control = (
      <label className="switch">
        <input
          id={id}
          type="checkbox"
          role="switch"
          data-testid={`param-${name}`}
          checked={Boolean(shown)}
          disabled={readOnly}
          onChange={(e) => setParam(nodeId, name, e.target.checked)}
        />
        <span className="track" aria-hidden="true" />
      </label>
    );
  } else if (k === "enum") {
    control = (
      <select
        id={id}
        data-testid={`param-${name}`}
        value={String(shown ?? "")}
        disabled={readOnly}
        onChange={(e) => setParam(nodeId, name, e.target.value)}
      >
        {schema.enum!.map((option) => <option key={String(option)} value={String(option)}>{String(option)}</option>)}
      </select>
    );
  } else {
    control = (
      <input
        id={id}
        data-testid={`param-${name}`}
        type={k === "text" ? "text" : "number"}
        inputMode={k === "text" ? undefined : "decimal"}
        min={schema.minimum}
        max={schema.maximum}
        step={k === "integer" ? 1 : "any"}
        value={text}
        placeholder={schema.default === undefined || schema.default === null ? "required" : `default ${formatValue(schema.default)}`}
        readOnly={readOnly}
        aria-invalid={!!(error || problem)}
        onFocus={() => {
          typing.current = true;
          beginGesture();
        }}
        onChange={(e) => {
          setText(e.target.value);
          commit(e.target.value);
        }}
        onBlur={() => {
          typing.current = false;
          endGesture();
          if (error) return; // a refused text stays, with its reason, until fixed or undone
          setText(formatValue(value === undefined ? schema.default : value));
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter") (e.target as HTMLInputElement).blur();
          if (e.key === "Escape") { // undo the typing: back to the value in force
            setText(formatValue(value === undefined ? schema.default : value));
            setError(null);
          }
        }}
      />
    );
  }
  return (
    <div className={`field ${problem ? "field-problem" : ""} ${error ? "field-invalid" : ""}`} data-field={name}>
      <div className="field-row">
        <label htmlFor={id} title={help}>{label}</label>
        {control}
        {explicit && !readOnly && schema.default !== undefined && (
          <button className="icon" title={`Reset to the default (${formatValue(schema.default) || "none"})`} onClick={() => setParam(nodeId, name, undefined)}>↺</button>
        )}
      </div>
      {error && <div className="field-error" role="alert">{label} {error}</div>}
      {problem && !error && <div className="field-error" role="alert">{problem.message}</div>}
      {help && !error && !problem && <div className="field-help">{help}</div>}
    </div>
  );
}

export function ParamForm({ nodeId, schema, params, problems, readOnly }: {
  nodeId: string; schema: ObjectSchema | undefined; params: Record<string, unknown> | undefined;
  problems: Problem[]; readOnly: boolean;
}) {
  const properties = Object.entries(schema?.properties ?? {});
  if (properties.length === 0) return <p className="muted">This block has no parameters.</p>;
  return (
    <div className="param-form">
      {properties.map(([name, fieldSchema]) => (
        <Field
          key={`${nodeId}:${name}`}
          nodeId={nodeId}
          name={name}
          schema={fieldSchema}
          value={params?.[name]}
          problem={problems.find((p) => p.field === name)}
          readOnly={readOnly}
        />
      ))}
    </div>
  );
}

// One setting of a form generated from a JSON Schema: numbers with their ranges, enums as
// selects, booleans as switches, lists as "3, 32, 32". A value the schema refuses is shown
// with its reason and not applied; a server's problem lights the field up. A list whose
// entries are one of a few names ("eager", "compile", …) is a row of checkboxes.
// Both forms use it: a block's parameters (ParamForm) and a run's settings (RunPanel).
import { useEffect, useRef, useState } from "react";

export interface FieldSchema {
  type?: string | string[];
  enum?: unknown[];
  anyOf?: FieldSchema[];
  items?: FieldSchema;
  /** an object's: the schema of its values (a map of names to values) */
  additionalProperties?: boolean | FieldSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
  description?: string;
  title?: string;
  /** run settings: shown first, prefilled */
  "x-basic"?: boolean;
  /** run settings: the default follows from other settings, in words ("lr / 10") */
  "x-derived"?: string;
}

export interface ObjectSchema {
  properties?: Record<string, FieldSchema>;
}

type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * How a form treats its fields. `params` (a block's parameters): every change applies at
 * once, a blank nullable field is null, text that does not parse goes back to the value on
 * blur, the description shows under the field. `settings` (a run's): blank is the server's
 * default, "none" is null, text that does not parse stays (with its error) until fixed,
 * the description is the label's tooltip.
 */
export type Variant = "params" | "settings";

const NONE = /^(none|null|off)$/i;

function kind(schema: FieldSchema): "boolean" | "integer" | "number" | "enum" | "choices" | "text" {
  if (schema.enum) return "enum";
  if (schema.type === "array" && schema.items?.enum) return "choices";
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
function parseOne(text: string, schema: FieldSchema, variant: Variant): Parsed {
  const t = text.trim();
  if (schema.type === "null") {
    const none = variant === "settings" ? NONE.test(t) : t === "";
    return none ? { ok: true, value: null } : { ok: false, error: variant === "settings" ? "none" : "" };
  }
  if (schema.enum) {
    return schema.enum.includes(t) ? { ok: true, value: t } : { ok: false, error: `one of ${schema.enum.join(", ")}` };
  }
  if (schema.type === "integer" || schema.type === "number") {
    if (t === "" || Number.isNaN(Number(t))) return { ok: false, error: "a number" };
    const n = Number(t);
    const problem = checkNumber(n, schema);
    return problem ? { ok: false, error: problem } : { ok: true, value: n };
  }
  if (schema.type === "array" && schema.items?.type === "string") {
    // A list of names (a Split's ports): the engine checks each name and says which is wrong.
    const names = t.replace(/^\[|\]$/g, "").split(/[\s,]+/).filter(Boolean);
    if (names.length === 0) return { ok: false, error: "a list of names such as q, k, v" };
    if (schema.minItems !== undefined && names.length < schema.minItems) return { ok: false, error: `at least ${schema.minItems} names` };
    if (schema.maxItems !== undefined && names.length > schema.maxItems) return { ok: false, error: `at most ${schema.maxItems} names` };
    return { ok: true, value: names };
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

/** The options of a list of names checked, in the schema's order; or why they cannot be. */
export function checkChoices(checked: readonly unknown[], schema: FieldSchema): Parsed {
  const value = (schema.items?.enum ?? []).filter((option) => checked.includes(option));
  const least = schema.minItems ?? 1;
  if (value.length < least) return { ok: false, error: least === 1 ? "needs at least one" : `needs at least ${least}` };
  return { ok: true, value };
}

/** Parse a typed value for a field; empty means "use the default" (a block's nullable
 * parameter: null). */
export function parseField(text: string, schema: FieldSchema, variant: Variant = "params"): Parsed {
  const nullable = schema.anyOf?.some((s) => s.type === "null");
  if (text.trim() === "" && (variant === "settings" || !nullable)) return { ok: true, value: undefined };
  const options = schema.anyOf ?? [schema];
  const errors: string[] = [];
  for (const option of options) {
    const parsed = parseOne(text, option, variant);
    if (parsed.ok) return parsed;
    if (parsed.error) errors.push(parsed.error);
  }
  return { ok: false, error: `expected ${errors.join(", or ")}` };
}

export function formatValue(value: unknown, variant: Variant = "params"): string {
  if (value === null && variant === "settings") return "none";
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

export interface SchemaFieldProps {
  /** the control's id, and its data-testid */
  id: string;
  testId: string;
  name: string;
  label: string;
  schema: FieldSchema;
  /** the value set; undefined: the default */
  value: unknown;
  /** a problem the server found here, in words */
  problem?: string;
  readOnly: boolean;
  variant?: Variant;
  /** a valid value was entered (undefined: back to the default) */
  onChange(value: unknown): void;
  /** the text does not parse (its reason), or parses again (null) */
  onInvalid?(error: string | null): void;
  onEditStart?(): void;
  onEditEnd?(): void;
}

export function SchemaField({
  id, testId, name, label, schema, value, problem, readOnly, variant = "params",
  onChange, onInvalid, onEditStart, onEditEnd,
}: SchemaFieldProps) {
  const shown = value === undefined ? schema.default : value;
  const [text, setText] = useState(formatValue(shown, variant));
  const [error, setErrorState] = useState<string | null>(null);
  const typing = useRef(false);
  const setError = (e: string | null) => {
    setErrorState(e);
    onInvalid?.(e);
  };
  useEffect(() => {
    if (typing.current) return; // never rewrite what is being typed
    setText(formatValue(value === undefined ? schema.default : value, variant));
    setError(null);
  }, [value, schema.default, variant]);

  const k = kind(schema);
  const explicit = value !== undefined;
  const help = schema.description;
  const derived = schema["x-derived"];
  const commit = (raw: string) => {
    const parsed = parseField(raw, schema, variant);
    if (!parsed.ok) {
      setError(parsed.error);
      return;
    }
    setError(null);
    onChange(parsed.value);
  };

  let control;
  if (k === "boolean") {
    control = (
      <label className="switch">
        <input
          id={id}
          type="checkbox"
          role="switch"
          data-testid={testId}
          checked={Boolean(shown)}
          disabled={readOnly}
          onChange={(e) => onChange(e.target.checked)}
        />
        <span className="track" aria-hidden="true" />
      </label>
    );
  } else if (k === "choices") {
    const checked = Array.isArray(shown) ? shown : [];
    control = (
      <span className="field-choices" id={id} data-testid={testId} role="group" aria-label={label}>
        {schema.items!.enum!.map((option) => (
          <label key={String(option)} className="field-choice">
            <input
              type="checkbox"
              value={String(option)}
              checked={checked.includes(option)}
              disabled={readOnly}
              onChange={(e) => {
                const next = e.target.checked ? [...checked, option] : checked.filter((c) => c !== option);
                const parsed = checkChoices(next, schema);
                if (!parsed.ok) {
                  setError(parsed.error);
                  return;
                }
                setError(null);
                onChange(parsed.value);
              }}
            />
            {String(option)}
          </label>
        ))}
      </span>
    );
  } else if (k === "enum") {
    control = (
      <select
        id={id}
        data-testid={testId}
        value={String(shown ?? "")}
        disabled={readOnly}
        aria-invalid={variant === "settings" ? !!problem || undefined : undefined}
        onChange={(e) => onChange(e.target.value)}
      >
        {schema.enum!.map((option) => <option key={String(option)} value={String(option)}>{String(option)}</option>)}
      </select>
    );
  } else {
    // A run setting without a default is optional (blank: the server's own, e.g. an empty list).
    const placeholder = derived ? `default ${derived}`
      : schema.default === undefined || schema.default === null ? (variant === "settings" ? "optional" : "required")
        : `default ${formatValue(schema.default)}`;
    control = (
      <input
        id={id}
        data-testid={testId}
        type={k === "text" || variant === "settings" ? "text" : "number"}
        inputMode={k === "text" ? undefined : k === "integer" && variant === "settings" ? "numeric" : "decimal"}
        min={schema.minimum}
        max={schema.maximum}
        step={k === "integer" ? 1 : "any"}
        value={text}
        placeholder={placeholder}
        readOnly={readOnly}
        aria-invalid={!!(error || problem)}
        onFocus={() => {
          typing.current = true;
          onEditStart?.();
        }}
        onChange={(e) => {
          setText(e.target.value);
          commit(e.target.value);
        }}
        onBlur={() => {
          typing.current = false;
          onEditEnd?.();
          if (error) return; // a refused text stays, with its reason, until fixed or undone
          setText(formatValue(value === undefined ? schema.default : value, variant));
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && variant === "params") (e.target as HTMLInputElement).blur();
          if (e.key === "Escape") { // undo the typing: back to the value in force
            setText(formatValue(value === undefined ? schema.default : value, variant));
            setError(null);
          }
        }}
      />
    );
  }
  const resettable = schema.default !== undefined || derived !== undefined;
  return (
    <div className={`field ${problem ? "field-problem" : ""} ${error ? "field-invalid" : ""}`} data-field={name}>
      <div className="field-row">
        <label htmlFor={id} title={help}>{label}</label>
        {control}
        {explicit && !readOnly && resettable && (
          <button
            type="button"
            className="icon"
            title={`Reset to the default (${derived ?? (formatValue(schema.default) || "none")})`}
            onClick={() => onChange(undefined)}
          >↺</button>
        )}
      </div>
      {error && <div className="field-error" role="alert">{label} {error}</div>}
      {problem && !error && <div className="field-error" role="alert">{problem}</div>}
      {help && variant === "params" && !error && !problem && <div className="field-help">{help}</div>}
    </div>
  );
}

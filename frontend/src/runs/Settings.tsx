// A run's settings as a form, rendered from the served schema by the block form's code
// (SchemaField): the training form and the benchmark form use it.
import { useId } from "react";

import { SchemaField } from "../editor/SchemaField";
import type { Setting } from "./config";

/** The settings of a run, rendered from the served schema by the block form's code. */
export function Settings({ settings, values, problems, onChange, onInvalid }: {
  settings: Setting[];
  values: Record<string, unknown>;
  problems: Record<string, string>;
  onChange(name: string, value: unknown): void;
  onInvalid(name: string, error: string | null): void;
}) {
  const id = useId();
  return (
    <div className="runs-grid runs-settings">
      {settings.map(([name, schema]) => (
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
      ))}
    </div>
  );
}

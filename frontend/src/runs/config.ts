// The run form's settings: the schema of a run kind's settings comes from the server (GET
// /api/run-kinds), with titles, defaults, ranges and which settings come first (x-basic);
// nothing about the settings is written here. How the form's values become the `config`
// of POST /api/jobs: a blank setting is left out, and the server fills in its default.
import type { FieldSchema, ObjectSchema } from "../editor/SchemaField";

export type Setting = [name: string, schema: FieldSchema];

/** The settings the form shows first (prefilled with their defaults), and the rest. */
export function splitSettings(schema: ObjectSchema | undefined): { basic: Setting[]; advanced: Setting[] } {
  const all = Object.entries(schema?.properties ?? {});
  return { basic: all.filter(([, s]) => s["x-basic"]), advanced: all.filter(([, s]) => !s["x-basic"]) };
}

/** The form's first values: the basic settings at their defaults, the rest blank. */
export function initialValues(schema: ObjectSchema | undefined): Record<string, unknown> {
  return Object.fromEntries(splitSettings(schema).basic.map(([name, s]) => [name, s.default]));
}

/** The `config` of a run: the settings given, blank ones left out. */
export function buildConfig(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/** The setting a server problem names: `config.lr` → `lr`. */
export function settingOf(field: string | null | undefined): string | null {
  return field?.startsWith("config.") ? field.slice("config.".length) : null;
}

/** `dataset_options` from the form's option fields (whole numbers; blank: default). */
export function buildDatasetOptions(names: string[], values: Record<string, string>): { options: Record<string, number>; errors: Record<string, string> } {
  const options: Record<string, number> = {};
  const errors: Record<string, string> = {};
  for (const name of names) {
    const text = (values[name] ?? "").trim();
    if (!text) continue;
    const n = Number(text);
    if (Number.isInteger(n)) options[name] = n;
    else errors[name] = `${name} must be a whole number, got “${text}”`;
  }
  return { options, errors };
}

// The run form's settings (docs/runs.md "Configuration") and how its text becomes the
// `config` of POST /api/jobs. A blank field is left out: the server fills its default.

export type FieldKind = "int" | "float" | "float-or-none" | "choice" | "flag";

export interface ConfigField {
  key: string;
  label: string;
  kind: FieldKind;
  /** shown when blank: the server's default */
  placeholder?: string;
  choices?: string[];
  hint?: string;
}

/** The settings in the panel's first rows (prefilled). */
export const BASIC_FIELDS: ConfigField[] = [
  { key: "steps", label: "Steps", kind: "int", placeholder: "300", hint: "optimizer steps in all" },
  { key: "batch_size", label: "Batch size", kind: "int", placeholder: "64" },
  { key: "lr", label: "Learning rate", kind: "float", placeholder: "0.003", hint: "peak, after the warmup" },
  { key: "device", label: "Device", kind: "choice", choices: ["auto", "cpu", "cuda"], hint: "also picks the queue" },
];

export const BASIC_DEFAULTS: Record<string, string> = { steps: "300", batch_size: "64", lr: "0.003", device: "auto" };

/** Everything else, under "Advanced" (blank: the default). */
export const ADVANCED_FIELDS: ConfigField[] = [
  { key: "optimizer", label: "Optimizer", kind: "choice", choices: ["", "adamw", "sgd"], placeholder: "adamw" },
  { key: "min_lr", label: "Min learning rate", kind: "float", placeholder: "lr / 10", hint: "where the cosine decay ends" },
  { key: "warmup_steps", label: "Warmup steps", kind: "int", placeholder: "20" },
  { key: "weight_decay", label: "Weight decay", kind: "float", placeholder: "0.01" },
  { key: "grad_clip", label: "Gradient clip", kind: "float-or-none", placeholder: "1.0", hint: "“none”: no clipping" },
  { key: "seed", label: "Seed", kind: "int", placeholder: "0" },
  { key: "eval_interval", label: "Eval interval", kind: "int", placeholder: "50", hint: "steps between evaluations and samples" },
  { key: "eval_batches", label: "Eval batches", kind: "int", placeholder: "4" },
  { key: "log_interval", label: "Log interval", kind: "int", placeholder: "10" },
  { key: "attention_interval", label: "Attention interval", kind: "int", placeholder: "auto", hint: "0: no attention maps; at most 64 per module" },
  { key: "checkpoint_interval", label: "Checkpoint interval", kind: "int", placeholder: "eval interval", hint: "0: only the last" },
  { key: "sample_length", label: "Sample length", kind: "int", placeholder: "100", hint: "characters; 0: no samples" },
  { key: "sample_temperature", label: "Sample temperature", kind: "float", placeholder: "0.8", hint: "0: greedy" },
  { key: "bf16", label: "bfloat16 autocast (CUDA)", kind: "flag" },
  { key: "compile", label: "torch.compile", kind: "flag" },
];

export type FormValues = Record<string, string | boolean>;

/** Parses one field; an error sentence for a value that is not the right kind. */
export function parseField(field: ConfigField, raw: string | boolean | undefined): { value?: unknown; error?: string } {
  if (field.kind === "flag") return raw === true ? { value: true } : {};
  const text = typeof raw === "string" ? raw.trim() : "";
  if (text === "") return {};
  switch (field.kind) {
    case "int": {
      const n = Number(text);
      return Number.isInteger(n) ? { value: n } : { error: `${field.label} must be a whole number, got “${text}”` };
    }
    case "float": {
      const n = Number(text);
      return Number.isFinite(n) ? { value: n } : { error: `${field.label} must be a number, got “${text}”` };
    }
    case "float-or-none": {
      if (/^(none|off|null)$/i.test(text)) return { value: null };
      const n = Number(text);
      return Number.isFinite(n) ? { value: n } : { error: `${field.label} must be a number or “none”, got “${text}”` };
    }
    case "choice":
      return { value: text };
  }
}

/** The `config` of a run from the form, and the errors by field key. */
export function buildConfig(values: FormValues): { config: Record<string, unknown>; errors: Record<string, string> } {
  const config: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of [...BASIC_FIELDS, ...ADVANCED_FIELDS]) {
    const { value, error } = parseField(field, values[field.key]);
    if (error) errors[field.key] = error;
    else if (value !== undefined) config[field.key] = value;
  }
  return { config, errors };
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

/** The config setting a server error names ("config.steps must be…", "setting 'stpes'"). */
export function fieldOfError(message: string | null): string | null {
  if (!message) return null;
  const match = message.match(/config\.([a-z_]+)/i) ?? message.match(/config has no setting '([a-z_]+)'/i);
  if (match) return match[1];
  const pair = message.match(/need (lr) > 0/);
  return pair ? pair[1] : null;
}

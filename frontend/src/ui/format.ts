// How numbers, shapes and sizes are written everywhere in the editor.
import type { TensorSpec } from "../api/types";

/** 8320 → "8.32 k", 163_100_000 → "163 M". */
export function compact(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  const units: [number, string][] = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, unit] of units) {
    if (abs >= size) {
      const n = value / size;
      return `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} ${unit}`;
    }
  }
  return String(value);
}

/** FLOPs with their unit: "111 MFLOPs", "0 FLOPs". */
export function flops(value: number | null | undefined): string {
  const text = compact(value);
  return /[kMGT]$/.test(text) ? `${text}FLOPs` : `${text} FLOPs`;
}

/** Bytes as KiB, MiB, GiB. */
export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = value;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n >= 100 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/** ["B", 64, 128] → "[B, 64, 128]". */
export function shape(spec: Pick<TensorSpec, "shape"> | null | undefined): string {
  if (!spec) return "";
  return `[${spec.shape.join(", ")}]`;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? word : many}`;
}

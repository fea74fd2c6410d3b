// Canvas drawings (the chart, the heatmaps) cannot use CSS variables directly: they read
// them when drawn, and draw again when the theme changes.

import { useEffect, useState } from "react";

import { attentionRamp, isDarkBackground } from "./attentionData";

let version = 0;
const listeners = new Set<() => void>();
let installed = false;

function install() {
  if (installed || typeof window === "undefined") return;
  installed = true;
  const bump = () => {
    version++;
    for (const l of listeners) l();
  };
  if (typeof MutationObserver === "function") {
    new MutationObserver(bump).observe(document.documentElement, {
      attributes: true, attributeFilter: ["class", "data-theme", "style"],
    });
  }
  if (typeof matchMedia === "function") {
    matchMedia("(prefers-color-scheme: dark)").addEventListener?.("change", bump);
  }
}

/** A number that changes whenever the page's theme may have changed. */
export function useThemeVersion(): number {
  const [v, setV] = useState(version);
  useEffect(() => {
    install();
    const l = () => setV(version);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return v;
}

const ramps = new Map<boolean, Uint8ClampedArray>();

/** The heatmap colour ramp for the page behind `el` (light or dark). */
export function rampFor(el: Element | null): Uint8ClampedArray {
  const dark = isDarkBackground(el);
  let ramp = ramps.get(dark);
  if (!ramp) {
    ramp = attentionRamp(dark);
    ramps.set(dark, ramp);
  }
  return ramp;
}

/** A CSS variable's resolved value on `el`, or `fallback`. */
export function cssVar(el: Element | null, name: string, fallback: string): string {
  if (!el || typeof getComputedStyle !== "function") return fallback;
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

// Small formatting helpers shared by the dialogs.
import type { GraphDocument, GraphNode } from "../api/types";

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", else the date. */
export function relativeTime(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days === 1) return "yesterday";
  if (days < 30) return `${days} days ago`;
  return new Date(then).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** The full local date and time, for tooltips. */
export function absoluteTime(iso: string): string {
  const then = Date.parse(iso);
  return Number.isNaN(then) ? iso : new Date(then).toLocaleString();
}

export interface DocSummary {
  /** Nodes of the top graph. */
  nodes: number;
  /** Nodes at every depth, those inside Repeats included. */
  allNodes: number;
  edges: number;
  repeats: number;
  /** Node types by count, most common first. */
  types: [string, number][];
}

export function summarize(doc: GraphDocument): DocSummary {
  const types = new Map<string, number>();
  let allNodes = 0;
  let repeats = 0;
  const walk = (nodes: GraphNode[]) => {
    for (const node of nodes) {
      allNodes++;
      types.set(node.type, (types.get(node.type) ?? 0) + 1);
      if (node.graph) {
        repeats++;
        walk(node.graph.nodes);
      }
    }
  };
  walk(doc.nodes);
  return {
    nodes: doc.nodes.length,
    allNodes,
    edges: doc.edges.length,
    repeats,
    types: [...types.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
  };
}

/** Whether this browser runs on a Mac (for Cmd instead of Ctrl). */
export function isMac(): boolean {
  const nav = typeof navigator === "undefined" ? undefined : navigator;
  const platform =
    (nav as (Navigator & { userAgentData?: { platform?: string } }) | undefined)?.userAgentData?.platform ||
    nav?.platform || "";
  return /mac|iphone|ipad|ipod/i.test(platform);
}

/** Copy text to the clipboard; falls back to selecting `field` (or a scratch textarea) and execCommand. */
export async function copyText(text: string, field?: HTMLInputElement | HTMLTextAreaElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall back below (insecure context, permission refused)
  }
  const active = document.activeElement as HTMLElement | null;
  let scratch: HTMLTextAreaElement | null = null;
  let target = field ?? null;
  if (!target) {
    scratch = document.createElement("textarea");
    scratch.value = text;
    scratch.setAttribute("readonly", "");
    scratch.style.position = "fixed";
    scratch.style.opacity = "0";
    document.body.appendChild(scratch);
    target = scratch;
  }
  try {
    target.focus();
    target.select();
    return typeof document.execCommand === "function" && document.execCommand("copy");
  } catch {
    return false;
  } finally {
    scratch?.remove();
    if (scratch) active?.focus?.();
  }
}

/** The message of an error for people: ApiError and Error both carry one. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

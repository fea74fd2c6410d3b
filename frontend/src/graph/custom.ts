// Blocks from My blocks (`Custom` nodes): their ports, their label, and what an update to a
// newer version changes. A Custom node carries a copy of one saved version as its `graph`;
// its input ports are that graph's Inputs and its output ports its Outputs, by id, in the
// order they are listed (as the engine reads them).
import type { CustomBlock, GraphDocument, GraphNode, TensorSpec } from "../api/types";
import { type Catalog, EditError, freshId, type Point, type Scope, updateGraphAt, nestedPorts } from "./ops";

export const CUSTOM = "Custom";

export function isCustom(node: GraphNode | undefined): boolean {
  return node?.type === CUSTOM;
}

/** The ports of a Custom node: its graph's Inputs and Outputs, by id, in listed order. */
export const customPorts = nestedPorts;

interface CustomParams {
  source?: unknown;
  version?: unknown;
  name?: unknown;
}

/** "Mlp v3": the block's name and the version it is pinned to. */
export function customLabel(node: GraphNode): string {
  const params = (node.params ?? {}) as CustomParams;
  const name = typeof params.name === "string" && params.name ? params.name : "Block";
  return typeof params.version === "number" ? `${name} v${params.version}` : name;
}

export function customSource(node: GraphNode): { source: string; version: number } | null {
  const params = (node.params ?? {}) as CustomParams;
  if (typeof params.source !== "string" || typeof params.version !== "number") return null;
  return { source: params.source, version: params.version };
}

/** Whether the scope is inside a Custom node's copy, which is never edited in place. */
export function insideCustom(doc: GraphDocument, scope: Scope): GraphNode | null {
  let nodes = doc.nodes;
  for (const id of scope) {
    const node = nodes.find((n) => n.id === id);
    if (!node?.graph) return null;
    if (isCustom(node)) return node;
    nodes = node.graph.nodes;
  }
  return null;
}

/** "[B, 8]" from a served spec (its shape already has the leading "B"). */
function specText(spec: { shape?: unknown[] | null; dtype?: string | null } | undefined): string | null {
  if (!spec?.shape) return null;
  const text = `[${spec.shape.join(", ")}]`;
  return spec.dtype && spec.dtype !== "float32" ? `${spec.dtype} ${text}` : text;
}

export interface PortChange {
  side: "input" | "output";
  port: string;
  before: string | null; // null: the port is new
  after: string | null; // null: the port is gone
  changed: boolean;
}

/** Port by port, what an update changes: shapes before (what the node gets and gives now,
 * from the current report) and after (the new version's own ports). */
export function updateChanges(
  node: GraphNode,
  now: { inputs?: Record<string, TensorSpec>; outputs?: Record<string, TensorSpec> } | undefined,
  next: Pick<CustomBlock, "inputs" | "outputs">,
): PortChange[] {
  const rows: PortChange[] = [];
  for (const side of ["input", "output"] as const) {
    const before = customPorts(node, side === "input" ? "inputs" : "outputs");
    const after = side === "input" ? next.inputs : next.outputs;
    const current = (side === "input" ? now?.inputs : now?.outputs) ?? {};
    const ids = [...before, ...after.map((p) => p.id).filter((id) => !before.includes(id))];
    for (const port of ids) {
      const had = before.includes(port);
      const found = after.find((p) => p.id === port);
      const was = had ? specText(current[port]) ?? "?" : null;
      const will = found ? specText(found) ?? "?" : null;
      rows.push({ side, port, before: was, after: will, changed: was !== will });
    }
  }
  return rows;
}

/** The document with node `id` (at `scope`) replaced by `fresh`, keeping its id and place;
 * edges to ports the new version no longer has are dropped. */
export function replaceCustom(doc: GraphDocument, scope: Scope, id: string, fresh: CustomBlock["node"]): GraphDocument {
  const node = fresh as unknown as GraphNode;
  const inputs = new Set(customPorts(node, "inputs"));
  const outputs = new Set(customPorts(node, "outputs"));
  return updateGraphAt(doc, scope, (graph) => {
    if (!graph.nodes.some((n) => n.id === id && isCustom(n))) throw new EditError(`no block from My blocks named ${id} here`);
    const keeps = (text: string, ports: Set<string>) => {
      const [node_, port] = text.split(".", 2);
      return node_ !== id || (port !== undefined ? ports.has(port) : ports.size === 1);
    };
    return {
      ...graph,
      nodes: graph.nodes.map((n) => (n.id === id ? { ...node, id } : n)),
      edges: graph.edges.filter((e) => keeps(e.from, outputs) && keeps(e.to, inputs)),
    };
  });
}

/** The document with a new Custom node for `fresh` at `at`; its id from the block's name. */
export function insertCustom(
  doc: GraphDocument, scope: Scope, fresh: CustomBlock["node"], at: Point, catalog: Catalog,
): { doc: GraphDocument; id: string } {
  let id = "";
  const params = (fresh as { params?: CustomParams }).params ?? {};
  const stem = typeof params.name === "string" ? params.name.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z_]+/, "") : "";
  const next = updateGraphAt(doc, scope, (graph) => {
    id = freshId(CUSTOM, new Set(graph.nodes.map((n) => n.id)), catalog, stem ? `${stem.slice(0, 40)}1` : undefined);
    const node = { ...(fresh as unknown as GraphNode), id };
    return {
      ...graph,
      nodes: [...graph.nodes, node],
      layout: { ...(graph.layout ?? {}), [id]: [Math.round(at[0]), Math.round(at[1])] },
    };
  });
  return { doc: next, id };
}

/** The token alphabet the share API accepts; anything else is never sent. */
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** The token of a pasted share link: a bare token, or a URL whose path is `/s/<token>`
 * (the share page, optionally `/fork` after it) or the API's `/api/shared/<token>`. Anything
 * else is null, so that garbage never reaches the API as a `share:` source. */
export function shareTokenOf(pasted: string): string | null {
  const text = pasted.trim();
  if (TOKEN.test(text)) return text;
  // The URL parser would quietly drop control characters; a link never has them.
  if (/[\s\u0000-\u001f\u007f]/.test(text)) return null;
  let url: URL;
  try {
    url = new URL(text, "https://placeholder.invalid");
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  const match = /^\/(?:s|api\/shared)\/([^/]+)(?:\/fork)?\/?$/.exec(url.pathname);
  if (!match) return null;
  return TOKEN.test(match[1]) ? match[1] : null;
}

export function isShareSource(source: string): boolean {
  return source.startsWith("share:");
}

/** The version to offer an update to, or null: only a newer latest than the pinned one. */
export function offeredUpdate(pinned: number | undefined | null, latest: number | undefined | null): number | null {
  if (typeof pinned !== "number" || typeof latest !== "number") return null;
  return latest > pinned ? latest : null;
}

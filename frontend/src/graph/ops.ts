// Pure operations on a graph document (the shipyard.graph/v1 format). The editor's state IS
// a document: every edit here returns a new document and leaves the old one untouched, so
// history is a list of documents and "what you draw is exactly what runs".
//
// A scope is the path of Repeat node ids from the top graph to the graph being edited:
// [] is the top graph, ["blocks"] the graph inside the Repeat "blocks".
import type { Block, BlockCatalog, GraphDocument, GraphEdge, GraphNode, NestedGraph } from "../api/types";

export type Scope = readonly string[];
export type Point = [number, number];
/** The part of a document or nested graph that the editor works on. */
export type Graph = GraphDocument | NestedGraph;

/** What the engine serves with GET /api/blocks, ready to use: the blocks by type and the
 * rules for node ids (docs/graph-format.md). */
export interface Catalog {
  readonly blocks: Readonly<Record<string, Block>>;
  /** what an id matches in full */
  readonly idPattern: RegExp;
  /** ids that would break the generated code: Python keywords and the module's own names */
  readonly reservedIds: ReadonlySet<string>;
}

export function makeCatalog(served: BlockCatalog): Catalog {
  return {
    blocks: Object.fromEntries(served.blocks.map((b) => [b.type, b])),
    idPattern: new RegExp(served.id_pattern),
    reservedIds: new Set(served.reserved_ids),
  };
}

/** Until the catalog arrives: no blocks, and no id is valid. */
export const EMPTY_CATALOG = makeCatalog({ id_pattern: "(?!)", reserved_ids: [], blocks: [] });

export const FORMAT = "shipyard.graph/v1";

export class EditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EditError";
  }
}

export function blankDocument(name = "Untitled model"): GraphDocument {
  return { format: FORMAT as GraphDocument["format"], name, nodes: [], edges: [], layout: {} };
}

// ---------------------------------------------------------------------------------------
// Scopes

export function graphAt(doc: GraphDocument, scope: Scope): Graph {
  let graph: Graph = doc;
  for (const id of scope) {
    const node = graph.nodes.find((n) => n.id === id);
    if (!node?.graph) throw new EditError(`no Repeat named ${id} here`);
    graph = node.graph;
  }
  return graph;
}

/** A new document with the graph at `scope` replaced by `edit(graph)`. */
export function updateGraphAt(doc: GraphDocument, scope: Scope, edit: (g: Graph) => Graph): GraphDocument {
  if (scope.length === 0) return edit(doc) as GraphDocument;
  const [head, ...rest] = scope;
  return updateGraphAtInner(doc, head, rest, edit) as GraphDocument;
}

function updateGraphAtInner(graph: Graph, head: string, rest: Scope, edit: (g: Graph) => Graph): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((node) => {
      if (node.id !== head) return node;
      if (!node.graph) throw new EditError(`${head} holds no graph`);
      const inner = rest.length === 0
        ? edit(node.graph)
        : updateGraphAtInner(node.graph, rest[0], rest.slice(1), edit);
      return { ...node, graph: inner as NestedGraph };
    }),
  };
}

// ---------------------------------------------------------------------------------------
// Endpoints and ports

export interface Endpoint {
  node: string;
  port: string;
}

/** A node's output ports. Most blocks have fixed ones (the catalog's `outputs`); a block
 * with `outputs_from` (Split) has one per entry of that parameter (its `names`), the
 * default's where the node leaves it out. */
export function outputPorts(node: GraphNode, block: Block | undefined): string[] {
  if (node.type === "Custom") return nestedPorts(node, "outputs");
  if (!block) return [];
  const from = block.outputs_from;
  if (!from) return block.outputs;
  const value = node.params?.[from] ?? block.defaults[from];
  return Array.isArray(value) && value.every((v) => typeof v === "string") ? value : block.outputs;
}

/** A node's input ports: the catalog's, or, for a block from My blocks (Custom), the Inputs
 * of the graph it holds. */
export function inputPorts(node: GraphNode, block: Block | undefined): string[] {
  if (node.type === "Custom") return nestedPorts(node, "inputs");
  return block?.inputs ?? [];
}

/** The ports of a node whose ports are its nested graph's (Custom): its Inputs or Outputs,
 * by id, in listed order. */
export function nestedPorts(node: GraphNode, side: "inputs" | "outputs"): string[] {
  const kind = side === "inputs" ? "Input" : "Output";
  return (node.graph?.nodes ?? []).filter((n) => n.type === kind).map((n) => n.id);
}

/** A node's ports on one side, as the engine sees them. */
export function portsOf(node: GraphNode, catalog: Catalog, side: "inputs" | "outputs"): string[] {
  const block = catalog.blocks[node.type];
  return side === "outputs" ? outputPorts(node, block) : inputPorts(node, block);
}

/** "node" or "node.port" → node and port; a missing port is the block's only one. */
export function parseEndpoint(
  text: string, graph: Graph, catalog: Catalog, side: "inputs" | "outputs",
): Endpoint {
  const dot = text.indexOf(".");
  if (dot >= 0) return { node: text.slice(0, dot), port: text.slice(dot + 1) };
  const node = graph.nodes.find((n) => n.id === text);
  const ports = node ? portsOf(node, catalog, side) : [];
  return { node: text, port: ports.length === 1 ? ports[0] : side === "inputs" ? "in" : "out" };
}

/** How an endpoint is written: the port is left out where the block has only one. */
export function formatEndpoint(
  node: GraphNode, port: string, catalog: Catalog, side: "inputs" | "outputs",
): string {
  const ports = portsOf(node, catalog, side);
  return ports.length === 1 && ports[0] === port ? node.id : `${node.id}.${port}`;
}

export function edgeKey(edge: GraphEdge): string {
  return `${edge.from}->${edge.to}`;
}

// ---------------------------------------------------------------------------------------
// Ids

export function idProblem(id: string, graph: Graph, catalog: Catalog, current?: string): string | null {
  if (!catalog.idPattern.test(id)) {
    return "an id starts with a letter or _ and has only letters, digits and _ (at most 64)";
  }
  if (catalog.reservedIds.has(id)) return `${id} is a reserved name in Python or PyTorch; pick another`;
  if (id !== current && graph.nodes.some((n) => n.id === id)) return `${id} is already taken here`;
  return null;
}

/** linear1, linear2, …: the first free id for a block type in a graph, from the block's stem.
 * With a `base` (a name to keep), the base itself when it is free, else the base numbered. */
export function freshId(type: string, taken: ReadonlySet<string>, catalog: Catalog, base?: string): string {
  const usable = (id: string) => !taken.has(id) && catalog.idPattern.test(id) && !catalog.reservedIds.has(id);
  if (base && usable(base)) return base;
  const stems = [base?.replace(/\d+$/, ""), catalog.blocks[type]?.id_stem, "node"];
  const stem = stems.find((s) => s && catalog.idPattern.test(`${s}1`)) ?? "node";
  for (let i = 1; i <= taken.size + catalog.reservedIds.size + 1; i++) {
    const id = `${stem}${i}`;
    if (usable(id)) return id;
  }
  throw new EditError(`no free id for a ${type} here`);
}

// ---------------------------------------------------------------------------------------
// Edits

/** The part of a block's parameter schema that addNode reads. */
interface ParamsSchema {
  properties?: Record<string, { examples?: unknown[] }>;
}

function nestedTemplate(): NestedGraph {
  return {
    nodes: [{ id: "x", type: "Input" }, { id: "y", type: "Output" }],
    edges: [{ from: "x", to: "y" }],
    layout: { x: [0, 0], y: [240, 0] },
  };
}

export function addNode(
  doc: GraphDocument, scope: Scope, type: string, at: Point, catalog: Catalog,
): { doc: GraphDocument; id: string } {
  const block = catalog.blocks[type];
  if (!block) throw new EditError(`no block type ${type}`);
  let id = "";
  const next = updateGraphAt(doc, scope, (graph) => {
    id = freshId(type, new Set(graph.nodes.map((n) => n.id)), catalog);
    const node: GraphNode = { id, type: type as GraphNode["type"] };
    // The top graph's Inputs need a shape; a new one gets the example of the block's schema.
    const shape = (block.params_schema as ParamsSchema).properties?.shape?.examples?.[0];
    if (type === "Input" && scope.length === 0 && shape !== undefined) node.params = { shape };
    if (block.holds_graph) node.graph = nestedTemplate();
    return {
      ...graph,
      nodes: [...graph.nodes, node],
      layout: { ...(graph.layout ?? {}), [id]: [Math.round(at[0]), Math.round(at[1])] },
    };
  });
  return { doc: next, id };
}

export function removeNodes(doc: GraphDocument, scope: Scope, ids: Iterable<string>, catalog: Catalog): GraphDocument {
  const gone = new Set(ids);
  if (gone.size === 0) return doc;
  return updateGraphAt(doc, scope, (graph) => {
    const layout = { ...(graph.layout ?? {}) };
    for (const id of gone) delete layout[id];
    return {
      ...graph,
      nodes: graph.nodes.filter((n) => !gone.has(n.id)),
      edges: graph.edges.filter((e) =>
        !gone.has(parseEndpoint(e.from, graph, catalog, "outputs").node)
        && !gone.has(parseEndpoint(e.to, graph, catalog, "inputs").node)),
      layout,
    };
  });
}

export function removeEdges(doc: GraphDocument, scope: Scope, keys: Iterable<string>): GraphDocument {
  const gone = new Set(keys);
  if (gone.size === 0) return doc;
  return updateGraphAt(doc, scope, (graph) => ({
    ...graph, edges: graph.edges.filter((e) => !gone.has(edgeKey(e))),
  }));
}

/** Whether an edge from → to may be drawn; the reason in words when not. */
export function connectionProblem(
  graph: Graph, from: Endpoint, to: Endpoint, catalog: Catalog,
): string | null {
  if (from.node === to.node) return "a block cannot feed itself";
  const target = graph.nodes.find((n) => n.id === to.node);
  const source = graph.nodes.find((n) => n.id === from.node);
  if (!target || !source) return "no such block";
  if (!inputPorts(target, catalog.blocks[target.type]).includes(to.port)) return `${to.node} has no input ${to.port}`;
  if (!outputPorts(source, catalog.blocks[source.type]).includes(from.port)) return `${from.node} has no output ${from.port}`;
  const taken = graph.edges.some((e) => {
    const end = parseEndpoint(e.to, graph, catalog, "inputs");
    return end.node === to.node && end.port === to.port;
  });
  if (taken) return `${to.node}.${to.port} already has an input; remove that edge first`;
  if (reaches(graph, to.node, from.node, catalog)) return "that edge would make a cycle";
  return null;
}

/** Whether `goal` can be reached from `start` along the edges. */
export function reaches(graph: Graph, start: string, goal: string, catalog: Catalog): boolean {
  const next = new Map<string, string[]>();
  for (const e of graph.edges) {
    const a = parseEndpoint(e.from, graph, catalog, "outputs").node;
    const b = parseEndpoint(e.to, graph, catalog, "inputs").node;
    next.set(a, [...(next.get(a) ?? []), b]);
  }
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === goal) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(next.get(id) ?? []));
  }
  return false;
}

export function connect(
  doc: GraphDocument, scope: Scope, from: Endpoint, to: Endpoint, catalog: Catalog,
): GraphDocument {
  return updateGraphAt(doc, scope, (graph) => {
    const problem = connectionProblem(graph, from, to, catalog);
    if (problem) throw new EditError(problem);
    const source = graph.nodes.find((n) => n.id === from.node)!;
    const target = graph.nodes.find((n) => n.id === to.node)!;
    const edge = {
      from: formatEndpoint(source, from.port, catalog, "outputs"),
      to: formatEndpoint(target, to.port, catalog, "inputs"),
    };
    return { ...graph, edges: [...graph.edges, edge] };
  });
}

/** Set one parameter; `undefined` removes it (the block's default applies). Where the
 * parameter names the node's output ports (a Split's `names`), the edges leaving it follow
 * (see `followPorts`). */
export function setParam(
  doc: GraphDocument, scope: Scope, id: string, name: string, value: unknown, catalog?: Catalog,
): GraphDocument {
  return updateGraphAt(doc, scope, (graph) => {
    const before = graph.nodes.find((n) => n.id === id);
    let after: GraphNode | undefined;
    const nodes = graph.nodes.map((node) => {
      if (node.id !== id) return node;
      const params = { ...(node.params ?? {}) };
      if (value === undefined) delete params[name];
      else params[name] = value;
      const next: GraphNode = { ...node, params };
      if (Object.keys(params).length === 0) delete next.params;
      after = next;
      return next;
    });
    const block = before && catalog?.blocks[before.type];
    if (!before || !after || !block?.outputs_from || block.outputs_from !== name) return { ...graph, nodes };
    const moved = followPorts(outputPorts(before, block), outputPorts(after, block));
    const edges: GraphEdge[] = [];
    for (const e of graph.edges) {
      const dot = e.from.indexOf(".");
      if (dot < 0 || e.from.slice(0, dot) !== id) {
        edges.push(e);
        continue;
      }
      const port = moved.get(e.from.slice(dot + 1));
      if (port !== undefined) edges.push({ ...e, from: `${id}.${port}` });
    }
    return { ...graph, nodes, edges };
  });
}

/** Where the edges of each old output port go when the ports are renamed: a name that is
 * kept keeps its edges; one that is gone hands them to the new name in its place, if that
 * name is new too (`a, b` → `q, k`: a → q, b → k); otherwise they are removed. */
export function followPorts(before: readonly string[], after: readonly string[]): Map<string, string> {
  const moved = new Map<string, string>();
  before.forEach((port, i) => {
    if (after.includes(port)) moved.set(port, port);
    else if (i < after.length && !before.includes(after[i])) moved.set(port, after[i]);
  });
  return moved;
}

export function renameNode(doc: GraphDocument, scope: Scope, from: string, to: string, catalog: Catalog): GraphDocument {
  if (from === to) return doc;
  return updateGraphAt(doc, scope, (graph) => {
    const problem = idProblem(to, graph, catalog, from);
    if (problem) throw new EditError(problem);
    const rename = (text: string, side: "inputs" | "outputs") => {
      const end = parseEndpoint(text, graph, catalog, side);
      if (end.node !== from) return text;
      return text.includes(".") ? `${to}.${end.port}` : to;
    };
    const layout: Record<string, number[]> = {};
    for (const [key, value] of Object.entries(graph.layout ?? {})) layout[key === from ? to : key] = value;
    return {
      ...graph,
      nodes: graph.nodes.map((n) => (n.id === from ? { ...n, id: to } : n)),
      edges: graph.edges.map((e) => ({ from: rename(e.from, "outputs"), to: rename(e.to, "inputs") })),
      layout,
    };
  });
}

export function moveNodes(doc: GraphDocument, scope: Scope, moves: ReadonlyMap<string, Point>): GraphDocument {
  if (moves.size === 0) return doc;
  return updateGraphAt(doc, scope, (graph) => {
    const layout = { ...(graph.layout ?? {}) };
    for (const [id, [x, y]] of moves) layout[id] = [Math.round(x), Math.round(y)];
    return { ...graph, layout };
  });
}

// ---------------------------------------------------------------------------------------
// Copy, paste, duplicate

/** What the clipboard carries: a graph document holding the copied nodes and the edges
 * between them, so it can be pasted into another tab or opened as a file. */
export function copyFragment(doc: GraphDocument, scope: Scope, ids: Iterable<string>, catalog: Catalog): GraphDocument {
  const graph = graphAt(doc, scope);
  const keep = new Set(ids);
  const layout: Record<string, number[]> = {};
  for (const id of keep) if (graph.layout?.[id]) layout[id] = graph.layout[id];
  return {
    format: FORMAT as GraphDocument["format"],
    name: "clipboard",
    nodes: graph.nodes.filter((n) => keep.has(n.id)),
    edges: graph.edges.filter((e) =>
      keep.has(parseEndpoint(e.from, graph, catalog, "outputs").node)
      && keep.has(parseEndpoint(e.to, graph, catalog, "inputs").node)),
    layout,
  };
}

/** Whether a parsed value looks like a graph fragment (pasted text may be anything). */
export function isFragment(value: unknown): value is GraphDocument {
  if (!value || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return v.format === FORMAT && Array.isArray(v.nodes) && Array.isArray(v.edges)
    && (v.nodes as unknown[]).every((n) => !!n && typeof n === "object"
      && typeof (n as GraphNode).id === "string" && typeof (n as GraphNode).type === "string");
}

/** Paste a fragment: ids that are taken get fresh ones, positions move by `offset`. */
export function pasteFragment(
  doc: GraphDocument, scope: Scope, fragment: GraphDocument, offset: Point, catalog: Catalog,
): { doc: GraphDocument; ids: string[] } {
  const unknown = fragment.nodes.find((n) => !catalog.blocks[n.type]);
  if (unknown) throw new EditError(`the pasted graph has a block type this editor does not know: ${unknown.type}`);
  const ids: string[] = [];
  const next = updateGraphAt(doc, scope, (graph) => {
    const taken = new Set(graph.nodes.map((n) => n.id));
    const renamed = new Map<string, string>();
    for (const node of fragment.nodes) {
      const id = freshId(node.type, taken, catalog, node.id);
      taken.add(id);
      renamed.set(node.id, id);
      ids.push(id);
    }
    const fix = (text: string, side: "inputs" | "outputs") => {
      const end = parseEndpoint(text, fragment, catalog, side);
      const id = renamed.get(end.node);
      if (id === undefined) return null;
      return text.includes(".") ? `${id}.${end.port}` : id;
    };
    const edges: GraphEdge[] = [];
    for (const e of fragment.edges) {
      const from = fix(e.from, "outputs");
      const to = fix(e.to, "inputs");
      if (from !== null && to !== null) edges.push({ from, to });
    }
    const layout = { ...(graph.layout ?? {}) };
    fragment.nodes.forEach((node, i) => {
      const at = fragment.layout?.[node.id] ?? [i * 40, i * 40];
      layout[renamed.get(node.id)!] = [Math.round(at[0] + offset[0]), Math.round(at[1] + offset[1])];
    });
    return {
      ...graph,
      nodes: [...graph.nodes, ...fragment.nodes.map((n) => ({ ...n, id: renamed.get(n.id)! }))],
      edges: [...graph.edges, ...edges],
      layout,
    };
  });
  return { doc: next, ids };
}

// ---------------------------------------------------------------------------------------
// Repeat from a selection

/** Wrap selected nodes that form a chain section (one edge in, one output used outside)
 * into a new Repeat ×1 in their place. */
export function makeRepeat(
  doc: GraphDocument, scope: Scope, ids: Iterable<string>, catalog: Catalog,
): { doc: GraphDocument; id: string } {
  const graph = graphAt(doc, scope);
  const inside = new Set(ids);
  if (inside.size === 0) throw new EditError("select the blocks to repeat first");
  for (const id of inside) {
    const node = graph.nodes.find((n) => n.id === id);
    if (!node) throw new EditError(`no block ${id}`);
    if (node.type === "Input" || node.type === "Output") {
      throw new EditError("a Repeat cannot take the model's Input or Output; select the blocks between them");
    }
  }
  const parsed = graph.edges.map((e) => ({
    edge: e,
    from: parseEndpoint(e.from, graph, catalog, "outputs"),
    to: parseEndpoint(e.to, graph, catalog, "inputs"),
  }));
  const entering = parsed.filter((p) => !inside.has(p.from.node) && inside.has(p.to.node));
  const leaving = parsed.filter((p) => inside.has(p.from.node) && !inside.has(p.to.node));
  const sources = new Set(entering.map((p) => `${p.from.node}.${p.from.port}`));
  const exits = new Set(leaving.map((p) => `${p.from.node}.${p.from.port}`));
  if (sources.size !== 1) {
    throw new EditError(`a Repeat takes one input: the selection is fed by ${sources.size} outputs from outside`);
  }
  if (exits.size !== 1) {
    throw new EditError(`a Repeat gives one output: ${exits.size} outputs of the selection are used outside it`);
  }
  const taken = new Set(graph.nodes.map((n) => n.id));
  const id = freshId("Repeat", taken, catalog);
  const innerIds = new Set(inside);
  const inId = freshId("Input", innerIds, catalog, "x");
  innerIds.add(inId);
  const outId = freshId("Output", innerIds, catalog, "y");
  const [exitNode, exitPort] = [...exits][0].split(".");
  const exitSource = graph.nodes.find((n) => n.id === exitNode)!;

  const layoutOf = (nid: string) => graph.layout?.[nid] ?? [0, 0];
  const xs = [...inside].map((nid) => layoutOf(nid));
  const minX = Math.min(...xs.map((p) => p[0]));
  const maxX = Math.max(...xs.map((p) => p[0]));
  const minY = Math.min(...xs.map((p) => p[1]));
  const innerLayout: Record<string, number[]> = { [inId]: [minX - 240, minY], [outId]: [maxX + 240, minY] };
  for (const nid of inside) innerLayout[nid] = layoutOf(nid);

  const nested: NestedGraph = {
    nodes: [
      { id: inId, type: "Input" },
      ...graph.nodes.filter((n) => inside.has(n.id)),
      { id: outId, type: "Output" },
    ],
    edges: [
      ...entering.map((p) => ({ from: inId, to: p.edge.to })),
      ...parsed.filter((p) => inside.has(p.from.node) && inside.has(p.to.node)).map((p) => p.edge),
      { from: formatEndpoint(exitSource, exitPort, catalog, "outputs"), to: outId },
    ],
    layout: innerLayout,
  };
  const sourceText = entering[0].edge.from;
  const outer: Graph = {
    ...graph,
    nodes: [
      ...graph.nodes.filter((n) => !inside.has(n.id)),
      { id, type: "Repeat" as GraphNode["type"], params: { times: 1 }, graph: nested },
    ],
    edges: [
      ...parsed.filter((p) => !inside.has(p.from.node) && !inside.has(p.to.node)).map((p) => p.edge),
      { from: sourceText, to: id },
      ...leaving.map((p) => ({ from: id, to: p.edge.to })),
    ],
    layout: (() => {
      const layout = { ...(graph.layout ?? {}) };
      for (const nid of inside) delete layout[nid];
      layout[id] = [Math.round((minX + maxX) / 2), minY];
      return layout;
    })(),
  };
  return { doc: updateGraphAt(doc, scope, () => outer), id };
}

// ---------------------------------------------------------------------------------------
// Comparing documents

/** JSON with object keys sorted: equal for documents with the same content. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]));
    }
    return v;
  });
}

/** The document without what never changes the model (layout, meta): what inspection sees. */
export function modelPart(doc: GraphDocument): unknown {
  const strip = (graph: Graph): unknown => ({
    nodes: graph.nodes.map((n) => (n.graph ? { ...n, graph: strip(n.graph) } : n)),
    edges: graph.edges,
  });
  return strip(doc);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function idOf(value: unknown): string | undefined {
  return isPlainObject(value) && typeof value.id === "string" ? value.id : undefined;
}

/** `next` with every part equal to the same part of `prev` replaced by `prev`'s own object
 * (list items with an `id` matched by id, others by place): a document that comes back from
 * the server (a SQL change) keeps the identity of what it did not change, so the canvas
 * redraws only the nodes that changed. `prev` itself when nothing differs. */
export function shareUnchanged<T>(prev: unknown, next: T): T {
  if (Object.is(prev, next)) return prev as T;
  if (Array.isArray(prev) && Array.isArray(next)) {
    const byId = new Map<string, unknown>();
    for (const item of prev) {
      const id = idOf(item);
      if (id !== undefined) byId.set(id, item);
    }
    let same = prev.length === next.length;
    const out = next.map((item, i) => {
      const id = idOf(item);
      const before = id !== undefined ? byId.get(id) : i < prev.length ? prev[i] : undefined;
      const shared = before === undefined ? item : shareUnchanged(before, item);
      if (shared !== prev[i]) same = false;
      return shared;
    });
    return (same ? prev : out) as T;
  }
  if (isPlainObject(prev) && isPlainObject(next)) {
    const keys = Object.keys(next);
    let same = keys.length === Object.keys(prev).length;
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const shared = key in prev ? shareUnchanged(prev[key], next[key]) : next[key];
      if (!(key in prev) || shared !== prev[key]) same = false;
      out[key] = shared;
    }
    return (same ? prev : out) as T;
  }
  return next;
}

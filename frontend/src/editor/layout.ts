// Auto-layout: dagre places the graph at the current scope top to bottom, in layers, so a
// deep stack reads down the screen like the code it becomes. Which way a graph runs decides
// where its blocks' ports are (top and bottom, or left and right), so that edges never
// loop around a block.
import dagre from "@dagrejs/dagre";

import type { GraphDocument } from "../api/types";
import { type Catalog, type Graph, type Point, type Scope, graphAt, moveNodes, parseEndpoint } from "../graph/ops";

export interface Size {
  width: number;
  height: number;
}

/** Sizes before a block is drawn; close to what the CSS gives them. */
export const BLOCK_SIZE: Size = { width: 184, height: 66 };
const REPEAT_SIZE: Size = { width: 216, height: 112 };

export function autoLayout(
  doc: GraphDocument, scope: Scope, catalog: Catalog, sizes?: ReadonlyMap<string, Size>,
): GraphDocument {
  const graph = graphAt(doc, scope);
  const g = new dagre.graphlib.Graph();
  // ranksep leaves room for the shape label on each edge between two layers.
  g.setGraph({ rankdir: "TB", nodesep: 48, ranksep: 44, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    g.setNode(node.id, { ...(sizes?.get(node.id) ?? (node.graph ? REPEAT_SIZE : BLOCK_SIZE)) });
  }
  for (const edge of graph.edges) {
    g.setEdge(
      parseEndpoint(edge.from, graph, catalog, "outputs").node,
      parseEndpoint(edge.to, graph, catalog, "inputs").node,
    );
  }
  dagre.layout(g);
  const moves = new Map<string, Point>();
  for (const node of graph.nodes) {
    const placed = g.node(node.id);
    if (placed) moves.set(node.id, [placed.x - placed.width / 2, placed.y - placed.height / 2]);
  }
  return moveNodes(doc, scope, moves);
}

/** Lay out the graph and every graph inside its Repeats. */
export function autoLayoutAll(doc: GraphDocument, catalog: Catalog, scope: Scope = []): GraphDocument {
  let next = autoLayout(doc, scope, catalog);
  for (const node of graphAt(next, scope).nodes) {
    if (node.graph) next = autoLayoutAll(next, catalog, [...scope, node.id]);
  }
  return next;
}

/** Which way a graph's edges mostly run, from where its blocks are: "LR" when they go
 * more across than down (a graph laid out in a row, as models saved before top-to-bottom
 * layout were), else "TB" (also for a graph with no edges yet). */
export function layoutDirection(graph: Graph, catalog: Catalog): "TB" | "LR" {
  const at = graph.layout ?? {};
  let across = 0;
  let down = 0;
  for (const edge of graph.edges) {
    const from = at[parseEndpoint(edge.from, graph, catalog, "outputs").node];
    const to = at[parseEndpoint(edge.to, graph, catalog, "inputs").node];
    if (!from || !to) continue;
    across += Math.abs(to[0] - from[0]);
    down += Math.abs(to[1] - from[1]);
  }
  return across > down ? "LR" : "TB";
}

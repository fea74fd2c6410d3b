// Auto-layout: dagre places the graph at the current scope left to right, in layers.
import dagre from "@dagrejs/dagre";

import type { GraphDocument } from "../api/types";
import { type Catalog, type Point, type Scope, graphAt, moveNodes, parseEndpoint } from "../graph/ops";

export function autoLayout(doc: GraphDocument, scope: Scope, catalog: Catalog): GraphDocument {
  const graph = graphAt(doc, scope);
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 96, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    const tall = node.graph ? 130 : 78;
    g.setNode(node.id, { width: 184, height: tall });
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

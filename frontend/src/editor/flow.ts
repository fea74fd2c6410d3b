// The graph at the current scope as React Flow nodes and edges. Derived objects are reused
// when nothing they show changed, so React Flow re-renders only what an edit touched: that
// keeps a 2000-node canvas smooth.
import type { Edge, Node } from "@xyflow/react";

import type { Block, NodeReport, Problem } from "../api/types";
import { type Catalog, type Graph, type Scope, edgeKey, parseEndpoint } from "../graph/ops";
import { modulePath } from "../graph/report";
import { shape } from "../ui/format";
import { layoutDirection } from "./layout";

export interface BlockData extends Record<string, unknown> {
  node: Graph["nodes"][number];
  block: Block | undefined;
  report: NodeReport | undefined;
  problems: Problem[] | undefined;
  /** Where a run reports this node's attention maps ("blocks.0.attn"). */
  module: string;
  readOnly: boolean;
  /** Ports on the top and bottom (a graph that runs down), or on the left and right. */
  vertical: boolean;
}

export interface ShapeEdgeData extends Record<string, unknown> {
  label: string;
  key: string;
}

export type BlockNodeType = Node<BlockData, "block" | "repeat" | "custom">;
export type ShapeEdgeType = Edge<ShapeEdgeData, "shape">;

export const NODE_WIDTH = 184;

export function deriveNodes(
  graph: Graph,
  scope: Scope,
  catalog: Catalog,
  reports: Record<string, NodeReport>,
  problems: Map<string, Problem[]>,
  selection: ReadonlySet<string>,
  readOnly: boolean,
  previous: ReadonlyMap<string, BlockNodeType>,
  repeats?: readonly boolean[],
): BlockNodeType[] {
  const vertical = layoutDirection(graph, catalog) === "TB";
  return graph.nodes.map((node, index) => {
    const at = graph.layout?.[node.id] ?? (vertical ? [0, index * 120] : [index * 220, 0]);
    const report = reports[node.id];
    const nodeProblems = problems.get(node.id);
    const selected = selection.has(node.id);
    const prev = previous.get(node.id);
    if (
      prev && prev.data.node === node && prev.data.report === report
      && sameProblems(prev.data.problems, nodeProblems) && prev.selected === selected
      && prev.position.x === at[0] && prev.position.y === at[1] && prev.data.readOnly === readOnly && prev.data.vertical === vertical
    ) {
      return prev;
    }
    const block = catalog.blocks[node.type];
    return {
      id: node.id,
      type: node.type === "Custom" ? "custom" : block?.holds_graph ? "repeat" : "block",
      position: { x: at[0], y: at[1] },
      // A size before measuring, so that fitting and culling work on first paint.
      initialWidth: block?.holds_graph && node.type !== "Custom" ? 216 : NODE_WIDTH,
      initialHeight: block?.holds_graph && node.type !== "Custom" ? 110 : 64,
      selected,
      draggable: !readOnly,
      connectable: !readOnly,
      data: {
        node, block, report, problems: nodeProblems, module: modulePath(scope, node.id, repeats), readOnly, vertical,
      },
      ...(prev?.measured ? { measured: prev.measured } : {}),
    };
  });
}

function sameProblems(a: Problem[] | undefined, b: Problem[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((p, i) => p.message === b[i].message && p.field === b[i].field);
}

export function deriveEdges(
  graph: Graph,
  catalog: Catalog,
  reports: Record<string, NodeReport>,
  selected: ReadonlySet<string>,
  previous: ReadonlyMap<string, ShapeEdgeType>,
): ShapeEdgeType[] {
  return graph.edges.map((edge) => {
    const key = edgeKey(edge);
    const from = parseEndpoint(edge.from, graph, catalog, "outputs");
    const to = parseEndpoint(edge.to, graph, catalog, "inputs");
    const spec = reports[from.node]?.outputs?.[from.port];
    const label = spec ? shape(spec) : "";
    const isSelected = selected.has(key);
    const prev = previous.get(key);
    if (prev && prev.data?.label === label && prev.selected === isSelected) return prev;
    return {
      id: key,
      type: "shape",
      source: from.node,
      sourceHandle: from.port,
      target: to.node,
      targetHandle: to.port,
      selected: isSelected,
      data: { label, key },
    };
  });
}

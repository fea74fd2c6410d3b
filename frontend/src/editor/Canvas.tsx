// The canvas: the graph at the current scope, drawn by React Flow from the store. Drags
// move nodes locally and commit once when they end (one undo step); connections that can
// never be valid are refused while dragging; blocks come from the palette by drag and drop,
// or from a quick-add box on double-click.
import {
  Background, type Connection, ControlButton, Controls, type EdgeChange, MiniMap, type NodeChange,
  ReactFlow, applyEdgeChanges, applyNodeChanges, useReactFlow,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";

import { type Point, connectionProblem, graphAt } from "../graph/ops";
import { joinProblems, nodeReportsAt, problemsAt, problemsIn, scopeRepeats } from "../graph/report";
import { useRuns } from "../runs/store";
import { useSql } from "../sql/store";
import { useEditor } from "../store/editor";
import { edgeTypes } from "./edges";
import { type BlockNodeType, type ShapeEdgeType, deriveEdges, deriveNodes } from "./flow";
import { BLOCK_SIZE } from "./layout";
import { nodeTypes } from "./nodes";
import { QuickAdd } from "./QuickAdd";
import { autoLayoutHere, fitCanvas, onFitRequest, requestFit } from "./view";

export const BLOCK_MIME = "application/shipyard-block";

// Props given to React Flow keep their identity across renders: it copies a changed prop
// into its store, and every store update runs every node's selector (2000 of them).
const PRO = { hideAttribution: true };
const MULTI_KEYS = ["Meta", "Control", "Shift"];
/** Above this many nodes the minimap (which redraws every node) is left out. */
const MINIMAP_LIMIT = 400;
/** Above this many nodes only those on screen are drawn. */
const CULL_ABOVE = 300;

/** The ids selected after React Flow's select changes; null when there were none. */
function applySelection(current: string[], changes: (NodeChange | EdgeChange)[]): string[] | null {
  let next: Set<string> | null = null;
  for (const change of changes) {
    if (change.type !== "select") continue;
    next ??= new Set(current);
    if (change.selected) next.add(change.id);
    else next.delete(change.id);
  }
  return next ? [...next] : null;
}

/** Whether the nodes on screen are the derived ones, where they were put, and measured
 * (unless `culled`: then those off screen never are, and their first sizes stand in). */
function drawn(shown: BlockNodeType[], derived: BlockNodeType[], culled: boolean): boolean {
  return shown.length === derived.length && shown.every((n, i) =>
    n.id === derived[i].id && n.position.x === derived[i].position.x
    && n.position.y === derived[i].position.y && (culled || !!n.measured?.width));
}

/** The top-left corner that centres a new block on the point where it was put. */
const centredOn = (at: { x: number; y: number }): Point =>
  [at.x - BLOCK_SIZE.width / 2, at.y - BLOCK_SIZE.height / 2];

const minimapClass = (n: BlockNodeType) => (n.data.problems?.length ? "mm-error" : "mm-node");
const onPaneClick = () => useEditor.getState().select([]);
const onNodeDoubleClick = (_e: React.MouseEvent, node: BlockNodeType) => {
  if (node.type === "repeat") useEditor.getState().enter(node.id);
};

export function Canvas() {
  const doc = useEditor((s) => s.doc);
  const scope = useEditor((s) => s.scope);
  const catalog = useEditor((s) => s.catalog);
  const report = useEditor((s) => s.report);
  const selection = useEditor((s) => s.selection);
  const selectedEdges = useEditor((s) => s.selectedEdges);
  const readOnly = useEditor((s) => s.readOnly);
  const runsOpen = useEditor((s) => s.drawerOpen);
  const sqlOpen = useSql((s) => s.open);
  const drawerOpen = runsOpen || sqlOpen;
  const flow = useReactFlow<BlockNodeType, ShapeEdgeType>();

  const graph = useMemo(() => {
    try {
      return graphAt(doc, scope);
    } catch {
      return graphAt(doc, []);
    }
  }, [doc, scope]);
  const reports = useMemo(() => nodeReportsAt(report, scope), [report, scope]);
  // The graph's own problems, and the nodes the run form's kind of run refuses (its live check).
  const refused = useRuns((s) => s.checkMarks.problems);
  const problems = useMemo(() => joinProblems(problemsAt(report, scope), problemsIn(refused, scope)), [report, scope, refused]);
  const selectionSet = useMemo(() => new Set(selection), [selection]);
  const edgeSelectionSet = useMemo(() => new Set(selectedEdges), [selectedEdges]);

  // The nodes and edges on screen, read when deriving new ones so unchanged ones are reused.
  const shownNodes = useRef<BlockNodeType[]>([]);
  const shownEdges = useRef<ShapeEdgeType[]>([]);
  // Whether each level of the scope is a Repeat (its copies in module paths) or a block from
  // My blocks; a string, so that an edit that changes neither keeps it.
  const repeatsKey = useMemo(() => scopeRepeats(doc, scope).join(","), [doc, scope]);
  const derivedNodes = useMemo(
    () => deriveNodes(graph, scope, catalog, reports, problems, selectionSet, readOnly,
      new Map(shownNodes.current.map((n) => [n.id, n])),
      repeatsKey ? repeatsKey.split(",").map((r) => r === "true") : []),
    [graph, scope, catalog, reports, problems, selectionSet, readOnly, repeatsKey],
  );
  const derivedEdges = useMemo(
    () => deriveEdges(graph, catalog, reports, edgeSelectionSet,
      new Map(shownEdges.current.map((e) => [e.id, e]))),
    [graph, catalog, reports, edgeSelectionSet],
  );

  // Local copies, so that a drag moves nodes at once without touching the store.
  // They follow the store in the same render (React's "adjusting state when a prop
  // changes"), not in an effect after it: a change (an undo, a SQL script) is drawn in the
  // frame it lands in, not one frame later.
  const [nodes, setNodes] = useState<BlockNodeType[]>(derivedNodes);
  const [edges, setEdges] = useState<ShapeEdgeType[]>(derivedEdges);
  const [followed, setFollowed] = useState({ nodes: derivedNodes, edges: derivedEdges });
  if (followed.nodes !== derivedNodes || followed.edges !== derivedEdges) {
    setFollowed({ nodes: derivedNodes, edges: derivedEdges });
    if (followed.nodes !== derivedNodes) setNodes(derivedNodes);
    if (followed.edges !== derivedEdges) setEdges(derivedEdges);
  }
  shownNodes.current = nodes;
  shownEdges.current = edges;

  // The view is fitted (editor/view.ts) when the canvas opens on a graph, when a scope is
  // entered or left, and when asked (fit view, auto-layout), each time once the canvas has
  // drawn and measured the nodes it is to fit. An empty canvas is not fitted when its first
  // block arrives: the view stays where the user is working.
  const wrapper = useRef<HTMLDivElement>(null);
  const pendingFit = useRef<{ duration: number } | null>(derivedNodes.length > 0 ? { duration: 0 } : null);
  const [fitTick, setFitTick] = useState(0);
  const scopeKey = scope.join("/");
  const firstScope = useRef(true);
  useEffect(() => {
    if (firstScope.current) {
      firstScope.current = false;
      return;
    }
    pendingFit.current = { duration: 0 };
  }, [scopeKey]);
  useEffect(() => onFitRequest((duration) => {
    pendingFit.current = { duration };
    setFitTick((t) => t + 1);
  }), []);
  useEffect(() => {
    const pending = pendingFit.current;
    // Wait until React Flow holds what the store holds, every node measured.
    if (!pending || !drawn(nodes, derivedNodes, nodes.length > CULL_ABOVE)) return;
    const frame = requestAnimationFrame(() => {
      const container = wrapper.current?.querySelector<HTMLElement>(".react-flow") ?? null;
      if (pendingFit.current && fitCanvas(flow, container, pending.duration)) pendingFit.current = null;
    });
    return () => cancelAnimationFrame(frame);
  }, [nodes, derivedNodes, fitTick, flow]);

  const onNodesChange = useCallback((changes: NodeChange<BlockNodeType>[]) => {
    setNodes((current) => applyNodeChanges(changes, current));
    const state = useEditor.getState();
    const selection = applySelection(state.selection, changes);
    if (selection) state.select(selection, state.selectedEdges);
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange<ShapeEdgeType>[]) => {
    setEdges((current) => applyEdgeChanges(changes, current));
    const selectedEdges = applySelection(useEditor.getState().selectedEdges, changes);
    if (selectedEdges) useEditor.setState({ selectedEdges });
  }, []);

  const onNodeDragStop = useCallback((_event: unknown, _node: BlockNodeType, dragged: BlockNodeType[]) => {
    const moves = new Map<string, Point>(dragged.map((n) => [n.id, [n.position.x, n.position.y]]));
    useEditor.getState().move(moves);
  }, []);

  const onSelectionDragStop = useCallback((_event: unknown, dragged: BlockNodeType[]) => {
    onNodeDragStop(null, dragged[0], dragged);
  }, [onNodeDragStop]);

  const isValidConnection = useCallback((connection: Connection | ShapeEdgeType) => {
    const state = useEditor.getState();
    if (state.readOnly) return false;
    const current = graphAt(state.doc, state.scope);
    return connectionProblem(
      current,
      { node: connection.source, port: connection.sourceHandle ?? "out" },
      { node: connection.target, port: connection.targetHandle ?? "in" },
      state.catalog,
    ) === null;
  }, []);

  const onConnect = useCallback((connection: Connection) => {
    useEditor.getState().connect(
      { node: connection.source, port: connection.sourceHandle ?? "out" },
      { node: connection.target, port: connection.targetHandle ?? "in" },
    );
  }, []);

  const onDrop = useCallback((event: React.DragEvent) => {
    const type = event.dataTransfer.getData(BLOCK_MIME);
    if (!type) return;
    event.preventDefault();
    const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    useEditor.getState().addBlock(type, centredOn(at));
  }, [flow]);

  const [quickAdd, setQuickAdd] = useState<{ left: number; top: number; at: Point } | null>(null);
  const onDoubleClick = useCallback((event: React.MouseEvent) => {
    if (readOnly) return;
    const target = event.target as HTMLElement;
    if (!target.classList.contains("react-flow__pane")) return;
    const box = wrapper.current!.getBoundingClientRect();
    const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    setQuickAdd({ left: event.clientX - box.left, top: event.clientY - box.top, at: centredOn(at) });
  }, [flow, readOnly]);

  const many = nodes.length > CULL_ABOVE;
  return (
    <div
      className="canvas"
      ref={wrapper}
      onDoubleClick={onDoubleClick}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes(BLOCK_MIME)) {
          e.preventDefault();
          e.dataTransfer.dropEffect = "copy";
        }
      }}
      onDrop={onDrop}
    >
      <ReactFlow<BlockNodeType, ShapeEdgeType>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeDragStop={onNodeDragStop}
        onSelectionDragStop={onSelectionDragStop}
        onConnect={onConnect}
        isValidConnection={isValidConnection}
        onNodeDoubleClick={onNodeDoubleClick}
        onPaneClick={onPaneClick}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={MULTI_KEYS}
        zoomOnDoubleClick={false}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        edgesFocusable={!readOnly}
        onlyRenderVisibleElements={many}
        minZoom={0.05}
        maxZoom={2.5}
        proOptions={PRO}
      >
        <Background gap={20} size={1} />
        <Controls showInteractive={false} showFitView={false}>
          <ControlButton
            className="react-flow__controls-fitview" title="Fit view (F)" aria-label="Fit view"
            onClick={() => requestFit(200)}
          >
            <FitIcon />
          </ControlButton>
          {!readOnly && (
            <ControlButton title="Auto-layout (L)" aria-label="Auto-layout" onClick={() => autoLayoutHere(flow)}>
              ⇶
            </ControlButton>
          )}
        </Controls>
        {/* With the run drawer or the SQL console open the canvas is short: the minimap would sit on blocks. */}
        {nodes.length <= MINIMAP_LIMIT && !drawerOpen && <MiniMap pannable zoomable nodeClassName={minimapClass} />}
      </ReactFlow>
      <Breadcrumbs />
      {graph.nodes.length === 0 && !readOnly && (
        <div className="canvas-empty">
          <p><strong>An empty canvas.</strong></p>
          <p>Drag blocks here from the palette, or double-click to add one. Start with an <em>Input</em>, end with an <em>Output</em>.</p>
        </div>
      )}
      {quickAdd && (
        <QuickAdd
          left={quickAdd.left}
          top={quickAdd.top}
          onPick={(type) => {
            useEditor.getState().addBlock(type, quickAdd.at);
            setQuickAdd(null);
          }}
          onClose={() => setQuickAdd(null)}
        />
      )}
    </div>
  );
}

/** React Flow's own fit-view icon (its Controls draw it only for their own fit). */
function FitIcon() {
  return (
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 30" aria-hidden="true">
      <path d="M3.692 4.63c0-.53.4-.938.939-.938h5.215V0H4.708C2.13 0 0 2.054 0 4.63v5.216h3.692V4.631zM27.354 0h-5.2v3.692h5.17c.53 0 .984.4.984.939v5.215H32V4.631A4.624 4.624 0 0027.354 0zm.954 24.83c0 .532-.4.94-.939.94h-5.215v3.768h5.215c2.577 0 4.631-2.13 4.631-4.707v-5.139h-3.692v5.139zm-23.677.94c-.531 0-.939-.4-.939-.94v-5.138H0v5.139c0 2.577 2.13 4.707 4.708 4.707h5.138V25.77H4.631z" />
    </svg>
  );
}

function Breadcrumbs() {
  const scope = useEditor((s) => s.scope);
  const doc = useEditor((s) => s.doc);
  const leaveTo = useEditor((s) => s.leaveTo);
  const catalog = useEditor((s) => s.catalog);
  if (scope.length === 0) return null;
  return (
    <nav className="breadcrumbs" aria-label="Where you are">
      <button className="link" onClick={() => leaveTo(0)}>{doc.name || "model"}</button>
      {scope.map((id, i) => {
        const node = graphAt(doc, scope.slice(0, i)).nodes.find((n) => n.id === id);
        const times = node?.params?.times ?? catalog.blocks.Repeat?.defaults.times;
        return (
          <span key={id}>
            <span className="muted"> › </span>
            {i === scope.length - 1
              ? <strong>{id} ×{String(times)}</strong>
              : <button className="link" onClick={() => leaveTo(i + 1)}>{id} ×{String(times)}</button>}
          </span>
        );
      })}
      <span className="muted"> · inside a Repeat: one copy is drawn, it runs ×N · Esc to leave</span>
    </nav>
  );
}

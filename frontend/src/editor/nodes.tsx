// How a block looks on the canvas: its type, id and parameter count, the ports it has, and
// its error under it in words. A Repeat is a framed group showing ×N and what it holds.
// With the overlay on, a block is tinted by its share of the forward time (a benchmark) or
// its fixed-point error (an FPGA run); a run form's warning of it (an FPGA run computes it
// approximately) shows under it like an error, in the warning colour.
import { Handle, type NodeProps, Position, useUpdateNodeInternals } from "@xyflow/react";
import { memo, useEffect, useState } from "react";

import { api } from "../api/client";
import type { Problem } from "../api/types";
import { AttentionMini } from "../runs/Attention";
import { useNodeOverlay, useNodeWarnings, type NodeOverlay } from "../runs/costs";
import { customLabel, customSource, isShareSource, offeredUpdate } from "../graph/custom";
import { inputPorts, outputPorts } from "../graph/ops";
import { useSqlTouched } from "../sql/store";
import { useEditor } from "../store/editor";
import { compact } from "../ui/format";
import type { BlockNodeType } from "./flow";

/** The parameters worth reading at a glance, as "out_features 128". */
function summary(params: Record<string, unknown> | undefined): string {
  if (!params) return "";
  return Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined)
    .slice(0, 3)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? `[${v.join(", ")}]` : String(v)}`)
    .join(" · ");
}

function categoryClass(category: string | undefined): string {
  return "cat-" + (category ?? "other").toLowerCase().replace(/[^a-z]+/g, "-");
}

/** A block's ports: inputs on top and outputs at the bottom in a graph that runs down,
 * on the left and right in one that runs across; several spread evenly along the side. */
function Ports({ names, type, vertical }: { names: string[]; type: "source" | "target"; vertical: boolean }) {
  const position = vertical
    ? (type === "target" ? Position.Top : Position.Bottom)
    : (type === "target" ? Position.Left : Position.Right);
  return (
    <>
      {names.map((name, i) => (
        <Handle
          key={name}
          id={name}
          type={type}
          position={position}
          style={{ [vertical ? "left" : "top"]: `${((i + 1) / (names.length + 1)) * 100}%` }}
          title={`${type === "target" ? "input" : "output"}${names.length > 1 ? ` ${name}` : ""}`}
        >
          {names.length > 1 && <span className={`port-label ${type} ${vertical ? "v" : "h"}`}>{name}</span>}
        </Handle>
      ))}
    </>
  );
}

/** The first problem, clamped to two lines so that a long message never grows the block over
 * its neighbours; the whole text is on hover and in the inspector. */
function ErrorLine({ data }: { data: BlockNodeType["data"] }) {
  if (!data.problems?.length) return null;
  const first = data.problems[0];
  return (
    <div className="bn-error" data-testid="node-error" title={data.problems.map((p) => p.message).join("\n")}>
      {data.problems.length > 1 && <span className="bn-more">{data.problems.length} problems: </span>}
      {first.message}
    </div>
  );
}

/** The tint's strength and its figure in words, for a block under the overlay (a
 * benchmark's share of the forward time, an FPGA run's error). */
function heatProps(heat: NodeOverlay | null): { style?: React.CSSProperties; title?: string } {
  if (!heat) return {};
  return { style: { "--heat": heat.strength.toFixed(3) } as React.CSSProperties, title: heat.title };
}

function HeatBadge({ heat }: { heat: NodeOverlay | null }) {
  if (!heat) return null;
  return <span className="bn-heat" data-testid="node-heat">{heat.badge}</span>;
}

/** What a run's live check warns of this block (an FPGA run computes it approximately). */
function WarningLine({ warnings }: { warnings: Problem[] }) {
  if (!warnings.length) return null;
  return (
    <div className="bn-warning" data-testid="node-warning" title={warnings.map((p) => p.message).join("\n")}>
      {warnings[0].message}
    </div>
  );
}

export const BlockNode = memo(function BlockNode({ id, data, selected }: NodeProps<BlockNodeType>) {
  const { node, block, report } = data;
  const outputs = outputPorts(node, block);
  // React Flow measures handles when a node mounts or resizes; ports that follow a
  // parameter (a Split's names) change without either, so it is told to measure again.
  const updateInternals = useUpdateNodeInternals();
  const outputKey = outputs.join(",");
  const dynamic = !!block?.outputs_from;
  useEffect(() => {
    if (dynamic) updateInternals(id);
  }, [dynamic, outputKey, id, updateInternals]);
  const heat = useNodeOverlay(node.id);
  const warnings = useNodeWarnings(node.id);
  const touched = useSqlTouched(node.id);
  const status = report?.status;
  const hasError = !!data.problems?.length;
  const className = [
    "block-node", categoryClass(block?.category), hasError ? "has-error" : "", !hasError && warnings.length ? "has-warning" : "",
    status === "skipped" ? "skipped" : "", selected ? "selected" : "", heat ? "heat" : "", touched ? "sql-touched" : "",
  ].join(" ");
  return (
    <div className={className} data-testid="block-node" data-type={node.type} data-node={node.id} {...heatProps(heat)}>
      <Ports names={inputPorts(node, block)} type="target" vertical={data.vertical} />
      <div className="bn-head">
        <span className="bn-type">{node.type}</span>
        {report && report.params > 0 && <span className="bn-params" title={`${report.params} parameters`}>{compact(report.params)}</span>}
      </div>
      <div className="bn-id">{node.id}<HeatBadge heat={heat} /></div>
      {node.params && <div className="bn-sub">{summary(node.params)}</div>}
      <ErrorLine data={data} />
      {!hasError && <WarningLine warnings={warnings} />}
      {(node.type === "MultiHeadAttention" || report?.attention) && <AttentionMini path={data.module} />}
      <Ports names={outputs} type="source" vertical={data.vertical} />
    </div>
  );
});

export const RepeatNode = memo(function RepeatNode({ id, data, selected }: NodeProps<BlockNodeType>) {
  const { node, block, report } = data;
  const times = String(node.params?.times ?? block?.defaults.times);
  const inner = node.graph?.nodes.filter((n) => n.type !== "Input" && n.type !== "Output") ?? [];
  const hasError = !!data.problems?.length;
  const enter = useEditor((s) => s.enter);
  const heat = useNodeOverlay(node.id);
  const warnings = useNodeWarnings(node.id);
  const touched = useSqlTouched(node.id);
  return (
    <div
      className={`block-node repeat-node ${hasError ? "has-error" : ""} ${!hasError && warnings.length ? "has-warning" : ""} ${selected ? "selected" : ""} ${heat ? "heat" : ""} ${touched ? "sql-touched" : ""}`}
      data-testid="block-node"
      data-type={node.type}
      data-node={node.id}
      {...heatProps(heat)}
      onDoubleClick={(e) => {
        e.stopPropagation();
        enter(id);
      }}
    >
      <Ports names={block?.inputs ?? ["in"]} type="target" vertical={data.vertical} />
      <div className="rn-frame-label">
        <span className="bn-id">{node.id}</span>
        <span className="rn-times" data-testid="repeat-times">×{times}</span>
        <HeatBadge heat={heat} />
      </div>
      <div className="rn-body">
        {inner.slice(0, 10).map((n) => (
          <span key={n.id} className="rn-chip" title={n.type}>{n.id}</span>
        ))}
        {inner.length > 10 && <span className="rn-chip muted">+{inner.length - 10}</span>}
      </div>
      <div className="rn-foot">
        {report && <span title={`${report.params} parameters in all ${times} copies`}>{compact(report.params)} params</span>}
        <button className="link" onClick={(e) => { e.stopPropagation(); enter(id); }}>Open ▸</button>
      </div>
      <ErrorLine data={data} />
      {!hasError && <WarningLine warnings={warnings} />}
      <Ports names={block?.outputs ?? ["out"]} type="source" vertical={data.vertical} />
    </div>
  );
});

/** A block from My blocks, drawn collapsed: its name and pinned version ("Mlp v3"), its
 * ports (the Inputs and Outputs of the graph it holds), Open to look inside (read-only: it
 * is a copy), and Update when a newer version of one of your graphs exists (or, for a
 * block from a share link, when the link shows a newer version). */
export const CustomNode = memo(function CustomNode({ id, data, selected }: NodeProps<BlockNodeType>) {
  const { node, report } = data;
  const inputs = inputPorts(node, undefined);
  const outputs = outputPorts(node, undefined);
  const updateInternals = useUpdateNodeInternals();
  const portKey = `${inputs.join(",")}|${outputs.join(",")}`;
  useEffect(() => updateInternals(id), [portKey, id, updateInternals]);
  const enter = useEditor((s) => s.enter);
  const pinned = customSource(node);
  const mine = useEditor((s) => s.myBlocks.find((b) => pinned && b.source === pinned.source));
  const shared = pinned !== null && isShareSource(pinned.source);
  const [sharedLatest, setSharedLatest] = useState<number | null>(null);
  // A shared block's latest version is asked for lazily, when the node is selected: the
  // owner's graphs are not in My blocks, and one request per node on load would be wasteful.
  useEffect(() => {
    if (!selected || !shared || data.readOnly) return;
    let live = true;
    api.customBlock(pinned!.source).then((found) => live && setSharedLatest(found.latest), () => {});
    return () => {
      live = false;
    };
  }, [selected, shared, pinned?.source, data.readOnly]);
  const newer = shared
    ? offeredUpdate(pinned?.version, sharedLatest)
    : offeredUpdate(pinned?.version, mine?.version);
  const hasError = !!data.problems?.length;
  const heat = useNodeOverlay(node.id);
  const warnings = useNodeWarnings(node.id);
  return (
    <div
      className={`block-node custom-node cat-my-blocks ${hasError ? "has-error" : ""} ${selected ? "selected" : ""} ${heat ? "heat" : ""}`}
      data-testid="block-node"
      data-type={node.type}
      data-node={node.id}
      {...heatProps(heat)}
      onDoubleClick={(e) => {
        e.stopPropagation();
        enter(id);
      }}
    >
      <Ports names={inputs} type="target" vertical={data.vertical} />
      <div className="bn-head">
        <span className="bn-type" data-testid="custom-label">{customLabel(node)}</span>
        {report && report.params > 0 && <span className="bn-params" title={`${report.params} parameters`}>{compact(report.params)}</span>}
      </div>
      <div className="bn-id">{node.id}<HeatBadge heat={heat} /></div>
      <div className="rn-foot">
        <button className="link" onClick={(e) => { e.stopPropagation(); enter(id); }}>Open ▸</button>
        {mine && <a className="link" href={`/g/${mine.graph_id}`} target="_blank" rel="noreferrer" onClick={(e) => e.stopPropagation()}>original</a>}
        {newer && !data.readOnly && (
          <button
            className="link"
            data-testid="custom-update"
            onClick={(e) => {
              e.stopPropagation();
              useEditor.getState().askUpdate(id, pinned!.source, newer);
            }}
          >Update to v{newer}</button>
        )}
      </div>
      <ErrorLine data={data} />
      {!hasError && <WarningLine warnings={warnings} />}
      <Ports names={outputs} type="source" vertical={data.vertical} />
    </div>
  );
});

export const nodeTypes = { block: BlockNode, repeat: RepeatNode, custom: CustomNode };

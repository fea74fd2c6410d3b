// An edge carries the shape of the tensor on it as a small label: [B, 64, 128].
import { BaseEdge, EdgeLabelRenderer, type EdgeProps, getBezierPath } from "@xyflow/react";
import { memo } from "react";

import type { ShapeEdgeType } from "./flow";

export const ShapeEdge = memo(function ShapeEdge(props: EdgeProps<ShapeEdgeType>) {
  const { sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, data, selected } = props;
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  return (
    <>
      <BaseEdge id={props.id} path={path} className={selected ? "edge-selected" : undefined} />
      {data?.label && (
        <EdgeLabelRenderer>
          <div
            className={`edge-label ${selected ? "selected" : ""}`}
            data-testid="edge-label"
            data-edge={data.key}
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
          >
            {data.label}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
});

export const edgeTypes = { shape: ShapeEdge };

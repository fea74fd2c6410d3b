// A block's parameter form, generated from its JSON Schema by the form code it shares with
// the run settings (SchemaField): every change applies at once, as one undo step per edit.
import type { Problem } from "../api/types";
import { useEditor } from "../store/editor";
import { SchemaField, type FieldSchema, type ObjectSchema } from "./SchemaField";

function Field({ nodeId, name, schema, value, problem, readOnly }: {
  nodeId: string; name: string; schema: FieldSchema; value: unknown; problem?: Problem; readOnly: boolean;
}) {
  const setParam = useEditor((s) => s.setParam);
  const beginGesture = useEditor((s) => s.beginGesture);
  const endGesture = useEditor((s) => s.endGesture);
  return (
    <SchemaField
      id={`param-${nodeId}-${name}`}
      testId={`param-${name}`}
      name={name}
      label={name}
      schema={schema}
      value={value}
      problem={problem?.message}
      readOnly={readOnly}
      onChange={(v) => setParam(nodeId, name, v)}
      onEditStart={beginGesture}
      onEditEnd={endGesture}
    />
  );
}

export function ParamForm({ nodeId, schema, params, problems, readOnly }: {
  nodeId: string; schema: ObjectSchema | undefined; params: Record<string, unknown> | undefined;
  problems: Problem[]; readOnly: boolean;
}) {
  const properties = Object.entries(schema?.properties ?? {});
  if (properties.length === 0) return <p className="muted">This block has no parameters.</p>;
  return (
    <div className="param-form">
      {properties.map(([name, fieldSchema]) => (
        <Field
          key={`${nodeId}:${name}`}
          nodeId={nodeId}
          name={name}
          schema={fieldSchema}
          value={params?.[name]}
          problem={problems.find((p) => p.field === name)}
          readOnly={readOnly}
        />
      ))}
    </div>
  );
}

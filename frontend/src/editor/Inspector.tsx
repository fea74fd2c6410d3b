// The inspector: what is selected, in full. One block: its id (the name in generated code),
// its parameter form, its shapes, parameters and FLOPs, its errors and its explanation.
// Nothing selected: the model's totals and every problem, each leading to its node.
import { useEffect, useState } from "react";

import type { Block, NodeReport, Problem } from "../api/types";
import { graphAt, outputPorts } from "../graph/ops";
import { graphProblems, nodePath, nodeReportsAt, problemsAt } from "../graph/report";
import { modelTitle, useEditor } from "../store/editor";
import { bytes, compact, plural, shape } from "../ui/format";
import { Markdown } from "../ui/Markdown";
import { EdgeFlow } from "../runs/EdgeFlow";
import { edgeSource } from "../runs/explain";
import { useRuns } from "../runs/store";
import { ParamForm } from "./ParamForm";

export function Inspector() {
  const selection = useEditor((s) => s.selection);
  const focusBlock = useEditor((s) => s.focusBlock);
  const catalog = useEditor((s) => s.catalog);
  const selectedEdges = useEditor((s) => s.selectedEdges);
  let body;
  if (focusBlock && catalog.blocks[focusBlock]) body = <BlockHelp block={catalog.blocks[focusBlock]} />;
  else if (selection.length === 1) body = <NodeInspector id={selection[0]} />;
  else if (selection.length > 1) body = <ManySelected count={selection.length} />;
  else if (selectedEdges.length === 1) body = <EdgeInspector edge={selectedEdges[0]} />;
  else body = <ModelSummary />;
  return <aside className="inspector" data-testid="inspector" aria-label="Inspector">{body}</aside>;
}

function BlockHelp({ block }: { block: Block }) {
  return (
    <div className="pad">
      <div className="insp-kicker">{block.category}</div>
      <h2>{block.type}</h2>
      <p className="lead">{block.summary}</p>
      <Markdown text={block.explanation} />
      <p className="muted small">Drag it onto the canvas, or double-click the canvas and type its name.</p>
    </div>
  );
}

function NodeInspector({ id }: { id: string }) {
  const doc = useEditor((s) => s.doc);
  const scope = useEditor((s) => s.scope);
  const catalog = useEditor((s) => s.catalog);
  const report = useEditor((s) => s.report);
  const readOnly = useEditor((s) => s.readOnly);
  const enter = useEditor((s) => s.enter);
  const node = graphAt(doc, scope).nodes.find((n) => n.id === id);
  if (!node) return <ModelSummary />;
  const block = catalog.blocks[node.type];
  const entry = nodeReportsAt(report, scope)[id] as NodeReport | undefined;
  const problems = problemsAt(report, scope).get(id) ?? [];
  const path = nodePath(scope, id);
  const own = problems.filter((p) => p.node === path);
  const inner = problems.filter((p) => p.node !== path);
  return (
    <div className="pad">
      <div className="insp-kicker">{block?.category ?? "unknown block"}</div>
      <h2>{node.type}</h2>
      <RenameField id={id} readOnly={readOnly} />
      {own.length > 0 && (
        <div className="insp-errors" role="alert">
          {own.map((p, i) => <p key={i}>{p.field && !p.message.includes(`'${p.field}'`) ? <code>{p.field}</code> : null} {p.message}</p>)}
        </div>
      )}
      {inner.length > 0 && (
        <div className="insp-errors" role="alert">
          <p>{plural(inner.length, "problem")} inside:</p>
          {inner.map((p, i) => <p key={i}><code>{p.node}</code> {p.message}</p>)}
        </div>
      )}
      <h3>Parameters</h3>
      <ParamForm nodeId={id} schema={block?.params_schema as never} params={node.params} problems={own}
        readOnly={readOnly || node.type === "Custom" /* pinned to a saved version: updated, not edited */} />
      {block?.holds_graph && (
        <button className="wide" onClick={() => enter(id)}>Open the inside ▸</button>
      )}
      <h3>Shapes</h3>
      <table className="kv">
        <tbody>
          {Object.entries(entry?.inputs ?? {}).map(([port, spec]) => (
            <tr key={`in-${port}`}><th>{portLabel("input", port, block?.inputs)}</th><td className="mono">{shape(spec)} <span className="muted">{spec?.dtype}</span></td></tr>
          ))}
          {Object.entries(entry?.outputs ?? {}).map(([port, spec]) => (
            <tr key={`out-${port}`}><th>{portLabel("output", port, outputPorts(node, block))}</th><td className="mono">{shape(spec)} <span className="muted">{spec?.dtype}</span></td></tr>
          ))}
          {!entry && <tr><td colSpan={2} className="muted">not checked yet</td></tr>}
          {entry?.status === "skipped" && <tr><td colSpan={2} className="muted">not computed: a block before this one has a problem</td></tr>}
          {entry?.status === "error" && !Object.keys(entry.outputs ?? {}).length && <tr><td colSpan={2} className="muted">not computed: see the problem above</td></tr>}
        </tbody>
      </table>
      {entry && entry.status === "ok" && (
        <table className="kv">
          <tbody>
            <tr><th>parameters</th><td>{compact(entry.params)}{entry.times && entry.times > 1 ? <span className="muted"> in {entry.times} copies</span> : null}</td></tr>
            <tr><th>FLOPs / sample</th><td>{compact(entry.flops)}</td></tr>
            <tr><th>activations</th><td>{bytes(entry.activation_bytes)} / sample</td></tr>
          </tbody>
        </table>
      )}
      {block && (
        <details className="explain" open>
          <summary>What it does</summary>
          <Markdown text={block.explanation} />
        </details>
      )}
    </div>
  );
}

/** One edge: where it runs, the shape it carries, and with a run open what flows on it. */
function EdgeInspector({ edge }: { edge: string }) {
  const doc = useEditor((s) => s.doc);
  const scope = useEditor((s) => s.scope);
  const catalog = useEditor((s) => s.catalog);
  const report = useEditor((s) => s.report);
  const job = useRuns((s) => s.job);
  const graph = graphAt(doc, scope);
  const source = edgeSource(edge, graph, catalog);
  const [from, to] = edge.split("->");
  const [node, port] = source ? source.split(".") : ["", ""];
  const spec = nodeReportsAt(report, scope)[node]?.outputs?.[port];
  return (
    <div className="pad" data-testid="edge-inspector">
      <div className="insp-kicker">edge</div>
      <h2 className="mono">{from} → {to}</h2>
      <table className="kv">
        <tbody>
          <tr><th>carries</th><td className="mono">{spec ? <>{shape(spec)} <span className="muted">{spec.dtype}</span></> : "not checked yet"}</td></tr>
        </tbody>
      </table>
      {scope.length > 0
        ? job && <p className="muted small">What flows inside a block is not shown: select the edge out of <code>{scope[0]}</code>.</p>
        : source && job
          ? <EdgeFlow source={source} />
          : <p className="muted small">Open a run in the runs drawer to see what flows on this edge for its validation example.</p>}
    </div>
  );
}

/** "input" for a block's only input, "input a" where it has several: a port's name is worth
 * showing only when there is a choice. */
function portLabel(side: "input" | "output", port: string, ports: string[] | undefined): string {
  return (ports?.length ?? 1) > 1 ? `${side} ${port}` : side;
}

function RenameField({ id, readOnly }: { id: string; readOnly: boolean }) {
  const rename = useEditor((s) => s.rename);
  const [text, setText] = useState(id);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText(id);
    setError(null);
  }, [id]);
  const commit = () => {
    if (text === id) return;
    const problem = rename(id, text.trim());
    setError(problem);
    if (problem) setText(text);
  };
  return (
    <div className={`field ${error ? "field-invalid" : ""}`}>
      <div className="field-row">
        <label htmlFor="node-id" title="The node's id: its name in the generated PyTorch code (self.<id>).">id</label>
        <input
          id="node-id"
          data-testid="node-id"
          className="mono"
          value={text}
          readOnly={readOnly}
          spellCheck={false}
          onChange={(e) => setText(e.target.value)}
          onBlur={commit}
          onKeyDown={(e) => {
            if (e.key === "Enter") commit();
            if (e.key === "Escape") {
              setText(id);
              setError(null);
            }
          }}
        />
      </div>
      {error ? <div className="field-error" role="alert">{error}</div>
        : <div className="field-help">Its name in the generated code: <code>self.{id}</code></div>}
    </div>
  );
}

function ManySelected({ count }: { count: number }) {
  const repeatSelection = useEditor((s) => s.repeatSelection);
  const duplicate = useEditor((s) => s.duplicateSelection);
  const remove = useEditor((s) => s.deleteSelection);
  const readOnly = useEditor((s) => s.readOnly);
  return (
    <div className="pad">
      <h2>{count} blocks selected</h2>
      {!readOnly && (
        <div className="stack">
          <button onClick={repeatSelection} title="Ctrl/Cmd+G">Make a Repeat of them</button>
          <button className="quiet" onClick={duplicate} title="Ctrl/Cmd+D">Duplicate</button>
          <button className="quiet danger" onClick={remove} title="Delete">Delete</button>
        </div>
      )}
      <p className="muted small">A Repeat takes a section with one way in and one way out, and runs it N times with separate weights.</p>
    </div>
  );
}

function ModelSummary() {
  const doc = useEditor((s) => s.doc);
  const title = useEditor(modelTitle);
  const report = useEditor((s) => s.report);
  const scope = useEditor((s) => s.scope);
  const select = useEditor((s) => s.select);
  const leaveTo = useEditor((s) => s.leaveTo);
  const enter = useEditor((s) => s.enter);
  const totals = report?.totals;
  const goTo = (p: Problem) => {
    if (!p.node) return;
    const parts = p.node.split("/");
    leaveTo(0);
    for (const part of parts.slice(0, -1)) enter(part);
    select([parts[parts.length - 1]]);
  };
  return (
    <div className="pad">
      <div className="insp-kicker">Model{scope.length ? ` › ${scope.join(" › ")}` : ""}</div>
      <h2 data-testid="inspector-title">{title}</h2>
      {doc.description && <p className="muted">{doc.description}</p>}
      {totals && (
        <table className="kv">
          <tbody>
            <tr><th>parameters</th><td>{compact(totals.params)}</td></tr>
            <tr><th>FLOPs / sample</th><td>{compact(totals.flops)}</td></tr>
            <tr><th>weights</th><td>{bytes(totals.param_bytes)}</td></tr>
            <tr><th>estimated memory</th><td>{bytes(totals.estimated_bytes)}</td></tr>
          </tbody>
        </table>
      )}
      {report && report.problems.length > 0 && (
        <>
          <h3>{plural(report.problems.length, "problem")}</h3>
          <ul className="problems">
            {report.problems.map((p, i) => (
              <li key={i}>
                {p.node ? <button className="link mono" onClick={() => goTo(p)}>{p.node}</button> : <strong>graph</strong>}
                {p.field && <code> {p.field}</code>}: {p.message}
              </li>
            ))}
          </ul>
        </>
      )}
      {graphProblems(report).length === 0 && report?.valid && <p className="ok">✓ The model is valid.</p>}
      {report && report.warnings.length > 0 && (
        <>
          <h3>Warnings</h3>
          <ul className="problems warnings">
            {report.warnings.map((p, i) => <li key={i}>{p.node && <code>{p.node} </code>}{p.message}</li>)}
          </ul>
        </>
      )}
      <p className="muted small">Select a block to edit it. Press <kbd>?</kbd> for shortcuts.</p>
    </div>
  );
}

// Reading the server's inspection report at the scope being edited.
import type { GraphDocument, InspectReport, NodeReport, Problem } from "../api/types";
import type { Scope } from "./ops";

type NodeReports = Record<string, NodeReport>;

/** The per-node reports of the graph at `scope` (inside Repeats: their body's). */
export function nodeReportsAt(report: InspectReport | null, scope: Scope): NodeReports {
  if (!report) return {};
  let nodes = report.nodes as NodeReports;
  for (const id of scope) {
    const body = (nodes[id] as { body?: { nodes?: NodeReports } } | undefined)?.body;
    if (!body?.nodes) return {};
    nodes = body.nodes;
  }
  return nodes;
}

/** The problem path of a node: "blocks/attn" for attn inside the Repeat blocks. */
export function nodePath(scope: Scope, id: string): string {
  return [...scope, id].join("/");
}

/** Problems by node id at `scope`; a problem of a node deeper inside a Repeat counts for
 * that Repeat too, so a collapsed group shows that something inside it is wrong. */
export function problemsAt(report: InspectReport | null, scope: Scope): Map<string, Problem[]> {
  return problemsIn(report?.problems ?? [], scope);
}

/** `problems` (each naming its node by path) by node id at `scope`, as problemsAt. */
export function problemsIn(problems: readonly Problem[], scope: Scope): Map<string, Problem[]> {
  const found = new Map<string, Problem[]>();
  const prefix = scope.length ? scope.join("/") + "/" : "";
  for (const problem of problems) {
    if (!problem.node || !problem.node.startsWith(prefix)) continue;
    const id = problem.node.slice(prefix.length).split("/")[0];
    found.set(id, [...(found.get(id) ?? []), problem]);
  }
  return found;
}

/** Two maps of problems by node id as one (each node's from `a` first, and a problem of `b`
 * that `a` already gives, same node and words, once); `a` itself when `b` has none. */
export function joinProblems(a: Map<string, Problem[]>, b: Map<string, Problem[]>): Map<string, Problem[]> {
  if (!b.size) return a;
  const joined = new Map(a);
  for (const [id, list] of b) {
    const held = a.get(id) ?? [];
    const fresh = list.filter((p) => !held.some((h) => h.node === p.node && h.message === p.message));
    if (fresh.length) joined.set(id, [...held, ...fresh]);
  }
  return joined;
}

/** Problems of the whole graph (no node named). */
export function graphProblems(report: InspectReport | null): Problem[] {
  return report ? report.problems.filter((p) => !p.node) : [];
}

/** The module path a run reports attention under: the first copy of each Repeat; a block
 * from My blocks (`repeats[i]` false) is one module, with no copies. */
export function modulePath(scope: Scope, id: string, repeats?: readonly boolean[]): string {
  return [...scope.flatMap((s, i) => (repeats?.[i] ?? true ? [s, "0"] : [s])), id].join(".");
}

/** For each level of `scope`, whether it is a Repeat (false: a block from My blocks). */
export function scopeRepeats(doc: GraphDocument, scope: Scope): boolean[] {
  const found: boolean[] = [];
  let nodes = doc.nodes;
  for (const id of scope) {
    const node = nodes.find((n) => n.id === id);
    found.push(node?.type !== "Custom");
    nodes = node?.graph?.nodes ?? [];
  }
  return found;
}

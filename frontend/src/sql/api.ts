// The SQL endpoints (docs/sql.md), typed by hand until the OpenAPI document describes them:
// then these interfaces become short names in api/types.ts and this file keeps only `sqlApi`.
// The shapes are the core's `SqlResult.to_json()` and `SqlError.to_json()`.
import { ApiError, type ErrorBody, request } from "../api/client";
import type { GraphDocument, Totals, Version } from "../api/types";

/** One statement of a script and what it gave. */
export interface SqlStatement {
  sql: string;
  kind: "select" | "insert" | "update" | "delete" | string;
  columns: string[];
  rows: unknown[][];
  /** More rows than the row limit: only the first ones came. */
  truncated: boolean;
  /** Rows an INSERT, UPDATE or DELETE changed. */
  changed: number;
}

/** An edge as in the document, with the Repeat it is inside, if any. */
export interface SqlEdge {
  from: string;
  to: string;
  parent?: string;
}

/** What a script changed; node paths name nested nodes `blocks/attn`. */
export interface SqlChange {
  nodes: { added: string[]; removed: string[]; changed: string[] };
  edges: { added: SqlEdge[]; removed: SqlEdge[] };
  model: string[];
  totals: Totals | null;
  /** A trained model's: what became of its weights; absent or null otherwise. */
  weights?: Record<string, unknown> | null;
}

/** A model made from a trained run by a script that changed it. */
export interface SqlDerived {
  graph: number;
  version: number;
  url: string;
}

export interface SqlResult {
  statements: SqlStatement[];
  /** The last statement that has columns: its columns, rows and truncation. */
  columns: string[];
  rows: unknown[][];
  truncated: boolean;
  change: SqlChange | null;
  /** The new document when the script changed the graph. */
  document: GraphDocument | null;
  ms: number;
  /** POST /api/graphs/{id}/sql: the version a change was saved as (null when the script
   * changed nothing), and whether it is new (false: it equals the latest, as for a save). */
  version?: Version | null;
  created?: boolean;
  /** POST /api/jobs/{id}/sql: the derived model a change made (null when none). */
  derived?: SqlDerived | null;
}

export interface SqlProblem {
  node: string | null;
  field: string | null;
  message: string;
}

/** A refused script: nothing was changed. */
export interface SqlErrorBody extends ErrorBody {
  error: string;
  /** 0-based index of the statement at fault, when one is. */
  statement?: number | null;
  sql?: string | null;
  /** Character offset in `sql` (or in the script when `sql` is null). */
  position?: number | null;
  problems?: SqlProblem[];
}

export interface SqlColumn {
  name: string;
  type: string;
  writable: boolean;
  doc: string;
}

export interface SqlExample {
  title: string;
  sql: string;
  /** Needs trained weights (a run's model). */
  trained: boolean;
}

export interface SqlTable {
  doc: string;
  columns: SqlColumn[];
}

export interface SqlSchema {
  tables: Record<string, SqlTable>;
  examples: SqlExample[];
}

/** The body of a refused SQL call, whatever the status (a 409 carries `current_version`). */
export function sqlError(error: unknown): SqlErrorBody {
  if (error instanceof ApiError) return error.body as SqlErrorBody;
  return { error: error instanceof Error ? error.message : String(error) };
}

export const sqlApi = {
  /** A saved graph: a change is saved as a new version on `baseVersion` (409 when stale). */
  graph: (id: number, body: { sql: string; document: GraphDocument; base_version: number }) =>
    request<SqlResult>("POST", `/api/graphs/${id}/sql`, body),
  /** A model never saved: the change comes back, nothing is saved. */
  draft: (body: { sql: string; document: GraphDocument }) => request<SqlResult>("POST", "/api/sql", body),
  /** A shared link: SELECT only (changes are refused with 403). */
  shared: (token: string, sql: string) => request<SqlResult>("POST", `/api/shared/${token}/sql`, { sql }),
  /** A trained run's model: a change makes a derived model. */
  job: (id: number, sql: string) => request<SqlResult>("POST", `/api/jobs/${id}/sql`, { sql }),
  schema: (trained: boolean) => request<SqlSchema>("GET", `/api/sql/schema?trained=${trained ? 1 : 0}`),
};

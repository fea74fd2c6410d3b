// The SQL endpoints (docs/sql.md, docs/api.md). Their bodies are the API's generated types
// (api/types.ts); a result here is any endpoint's: a saved graph's adds `version` and
// `created`, a run's adds `derived`.
import { ApiError, type ErrorBody, request } from "../api/client";
import type {
  GraphDocument,
  GraphSqlResult,
  JobSqlResult,
  SqlErrorBody as SqlRefusal,
  SqlResult as PlainSqlResult,
  SqlSchema,
} from "../api/types";

export type {
  SqlChange,
  SqlColumn,
  SqlDerived,
  SqlEdge,
  SqlExample,
  SqlSchema,
  SqlStatement,
  SqlTable,
} from "../api/types";

/** What any SQL endpoint answers. */
export type SqlResult = PlainSqlResult &
  Partial<Pick<GraphSqlResult, "version" | "created">> &
  Partial<Pick<JobSqlResult, "derived">>;

/** A refused call: a script the engine refused (statement, position, problems), or any
 * other error of the API (a 409 carries `current_version`, a bad body `fields`). */
export type SqlErrorBody = ErrorBody & Partial<SqlRefusal>;

export type SqlProblem = NonNullable<SqlErrorBody["problems"]>[number];

/** The body of a refused SQL call, whatever the status. */
export function sqlError(error: unknown): SqlErrorBody {
  if (error instanceof ApiError) return error.body as SqlErrorBody;
  return { error: error instanceof Error ? error.message : String(error) };
}

export const sqlApi = {
  /** A saved graph: a change is saved as a new version on `baseVersion` (409 when stale). */
  graph: (id: number, body: { sql: string; document: GraphDocument; base_version: number }) =>
    request<GraphSqlResult>("POST", `/api/graphs/${id}/sql`, body),
  /** A model never saved: the change comes back, nothing is saved. */
  draft: (body: { sql: string; document: GraphDocument }) => request<PlainSqlResult>("POST", "/api/sql", body),
  /** A shared link: SELECT only (changes are refused with 403). */
  shared: (token: string, sql: string) => request<PlainSqlResult>("POST", `/api/shared/${token}/sql`, { sql }),
  /** A trained run's model: a change makes a derived model. */
  job: (id: number, sql: string) => request<JobSqlResult>("POST", `/api/jobs/${id}/sql`, { sql }),
  schema: (trained: boolean) => request<SqlSchema>("GET", `/api/sql/schema?trained=${trained ? 1 : 0}`),
};

// The SQL console against a stubbed fetch: the console (what it sends, how it shows answers,
// how a change lands in the editor's store and its undo history) is the unit here. The
// server's side (the SQL engine, saving a version, refusing changes on a shared link) has
// its own tests under tests/, and tests/e2e/test_sql_console.py drives both together.
import { act } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { GraphDocument, Job } from "../api/types";
import { click, flush, type Rendered, render } from "../dialogs/testing";
import { canonical } from "../graph/ops";
import { runsStore } from "../runs/store";
import { isDirty, useEditor } from "../store/editor";
import type { SqlResult, SqlSchema } from "./api";
import { SqlConsole } from "./SqlConsole";
import { HISTORY_KEY, rowNode, useSql } from "./store";

interface Sent {
  method: string;
  path: string;
  body: unknown;
}

const doc: GraphDocument = {
  format: "shipyard.graph/v1",
  name: "tiny",
  nodes: [
    { id: "x", type: "Input", params: { shape: [16] } },
    {
      id: "blocks", type: "Repeat", params: { times: 2 },
      graph: {
        nodes: [
          { id: "x", type: "Input" },
          { id: "drop", type: "Dropout", params: { p: 0.1 } },
          { id: "y", type: "Output" },
        ],
        edges: [{ from: "x", to: "drop" }, { from: "drop", to: "y" }],
      },
    },
    { id: "y", type: "Output" },
  ],
  edges: [{ from: "x", to: "blocks" }, { from: "blocks", to: "y" }],
};

/** `doc` with the Dropout's p set, as the server gives it back. */
function withP(p: number): GraphDocument {
  const next = structuredClone(doc);
  next.nodes[1].graph!.nodes[1].params = { p };
  return next;
}

const col = (name: string) => ({ name, type: "TEXT", writable: true, doc: "" });
const schema: SqlSchema = {
  tables: {
    nodes: { doc: "one row per node", columns: [col("id"), col("path"), col("type"), col("params")] },
    edges: { doc: "one row per edge", columns: [col("from_node"), col("to_node")] },
  },
  examples: [
    { title: "Costliest blocks", sql: "SELECT id, type, params_count FROM nodes ORDER BY flops DESC LIMIT 5", trained: false },
    { title: "Freeze layer 0", sql: "UPDATE tensors SET frozen = 1 WHERE node LIKE 'blocks.0.%'", trained: true },
  ],
};

function result(partial: Partial<SqlResult>): SqlResult {
  return { statements: [], columns: [], rows: [], truncated: false, change: null, document: null, ms: 1.5, ...partial };
}

const selectResult = result({
  statements: [{
    sql: "SELECT path, type FROM nodes", kind: "select", columns: ["path", "type", "params"],
    rows: [["x", "Input", null], ["blocks/drop", "Dropout", { p: 0.1 }], ["gone", "Linear", null]],
    truncated: true, changed: 0,
  }],
  columns: ["path", "type", "params"], truncated: true,
});

const version = (number: number) => ({
  number, author: "ann", message: "UPDATE …", restored_from: null, content_hash: "h", initial_weights: false, created_at: "2026-01-01T00:00:00Z",
});

let sent: Sent[] = [];
let answers: Record<string, { status: number; body: unknown }> = {};

/** Answer each path (without query) with its status and JSON body; the schema always. */
function serve(routes: Record<string, { status: number; body: unknown }>) {
  answers = routes;
  vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
    const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
    sent.push({ method: init.method ?? "GET", path: input, body });
    const path = input.split("?")[0];
    // The server gives a model without weights only the examples that need none.
    const plain = { ...schema, examples: schema.examples.filter((e) => !e.trained) };
    const answer = path === "/api/sql/schema" ? { status: 200, body: input.endsWith("trained=1") ? schema : plain } : answers[path];
    if (!answer) return new Response(JSON.stringify({ error: `no route ${path}` }), { status: 404 });
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "Content-Type": "application/json" } });
  }));
}

const initialEditor = useEditor.getState();
const initialSql = useSql.getState();
let view: Rendered | null = null;

beforeEach(() => {
  sent = [];
  localStorage.removeItem(HISTORY_KEY);
  useEditor.setState(initialEditor, true);
  useSql.setState({ ...initialSql, open: true, history: [], touched: new Set(), schemas: { plain: null, trained: null } }, true);
  useEditor.getState().load(doc, { graph: { id: 7, name: "tiny", head: 3 }, savedDoc: doc });
});

afterEach(() => {
  view?.unmount();
  view = null;
  runsStore.setState({ job: null });
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

function textArea(): HTMLTextAreaElement {
  return view!.container.querySelector<HTMLTextAreaElement>('[data-testid="sql-text"]')!;
}

/** Type into the text area the way React notices, with the caret at the end. */
async function typeSql(value: string): Promise<void> {
  const area = textArea();
  const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value")!.set!;
  await act(async () => {
    setter.call(area, value);
    area.setSelectionRange(value.length, value.length);
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });
}

async function key(init: KeyboardEventInit): Promise<void> {
  await act(async () => {
    textArea().dispatchEvent(new KeyboardEvent("keydown", { bubbles: true, cancelable: true, ...init }));
  });
  await flush();
}

async function open(): Promise<Rendered> {
  view = await render(<SqlConsole />);
  await flush();
  return view;
}

const runButton = () => view!.container.querySelector<HTMLButtonElement>('[data-testid="sql-run"]')!;
const output = () => view!.container.querySelector('[data-testid="sql-output"]')!;
const sqlCalls = () => sent.filter((s) => s.path.endsWith("/sql"));

describe("SQL console", () => {
  it("runs the script on the saved graph with the editor's document and version, and shows the rows as a table", async () => {
    serve({ "/api/graphs/7/sql": { status: 200, body: selectResult } });
    await open();
    await typeSql("SELECT path, type FROM nodes");
    await click(runButton());
    await flush();

    expect(sqlCalls()).toEqual([{
      method: "POST", path: "/api/graphs/7/sql",
      body: { sql: "SELECT path, type FROM nodes", document: doc, base_version: 3 },
    }]);
    const table = output().querySelector('[data-testid="sql-table"]')!;
    expect([...table.querySelectorAll("th")].map((th) => th.textContent)).toEqual(["path", "type", "params"]);
    const rows = [...table.querySelectorAll("tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent));
    expect(rows).toEqual([["x", "Input", "NULL"], ["blocks/drop", "Dropout", '{"p":0.1}'], ["gone", "Linear", "NULL"]]);
    expect(output().querySelector('[data-testid="sql-truncated"]')!.textContent).toContain("only the first 3 rows");
  });

  it("runs on Ctrl+Enter and on Cmd+Enter, and keeps the scripts in a history walked with Ctrl+↑/↓", async () => {
    serve({ "/api/graphs/7/sql": { status: 200, body: selectResult } });
    await open();
    await typeSql("SELECT 1");
    await key({ key: "Enter", ctrlKey: true });
    await typeSql("SELECT 2");
    await key({ key: "Enter", metaKey: true });
    expect(sqlCalls().map((c) => (c.body as { sql: string }).sql)).toEqual(["SELECT 1", "SELECT 2"]);
    expect(JSON.parse(localStorage.getItem(HISTORY_KEY)!)).toEqual(["SELECT 1", "SELECT 2"]);

    await typeSql("SELECT 3 -- unfinished");
    await key({ key: "ArrowUp", ctrlKey: true });
    expect(textArea().value).toBe("SELECT 2");
    await key({ key: "ArrowUp", ctrlKey: true });
    expect(textArea().value).toBe("SELECT 1");
    await key({ key: "ArrowDown", ctrlKey: true });
    await key({ key: "ArrowDown", ctrlKey: true });
    expect(textArea().value).toBe("SELECT 3 -- unfinished");
  });

  it("selects the top-level node a clicked row names (a nested path selects its Repeat, leaving the Repeat the editor is in)", async () => {
    serve({ "/api/graphs/7/sql": { status: 200, body: selectResult } });
    useEditor.getState().enter("blocks");
    await open();
    await typeSql("SELECT path, type FROM nodes");
    await click(runButton());
    await flush();
    const rows = [...output().querySelectorAll("tbody tr")];
    expect(rows.map((r) => r.getAttribute("data-node"))).toEqual(["x", "blocks", null]);

    await click(rows[1]);
    expect(useEditor.getState().scope).toEqual([]);
    expect(useEditor.getState().selection).toEqual(["blocks"]);
    await click(rows[0]);
    expect(useEditor.getState().selection).toEqual(["x"]);
    await click(rows[2]); // names no node of the graph: nothing happens
    expect(useEditor.getState().selection).toEqual(["x"]);
  });

  it("finds a row's node by path, by a module path in `node`, by `parent`, else by `id`", () => {
    expect(rowNode(["id", "path"], ["drop", "blocks/drop"], doc)).toBe("blocks");
    expect(rowNode(["node", "name"], ["blocks.0.drop", "weight"], doc)).toBe("blocks");
    expect(rowNode(["id", "parent"], ["drop", "blocks"], doc)).toBe("blocks");
    expect(rowNode(["id", "type"], ["x", "Input"], doc)).toBe("x");
    expect(rowNode(["id"], ["nope"], doc)).toBeNull();
    expect(rowNode(["count"], [3], doc)).toBeNull();
  });

  it("applies a change as one undo step, highlights the touched nodes, and follows the saved version", async () => {
    const next = withP(0.3);
    serve({
      "/api/graphs/7/sql": {
        status: 200,
        body: result({
          statements: [{ sql: "UPDATE nodes …", kind: "update", columns: [], rows: [], truncated: false, changed: 1 }],
          document: next, version: version(4), created: true,
          change: { nodes: { added: [], removed: [], changed: ["blocks/drop"] }, edges: { added: [], removed: [] }, model: [], totals: null, weights: null },
        }),
      },
    });
    useEditor.getState().setName("renamed first"); // an unsaved edit before the script
    const before = useEditor.getState().doc;
    const pastBefore = useEditor.getState().history.past.length;
    await open();
    await typeSql("UPDATE nodes SET params = json_set(params, '$.p', 0.3) WHERE type = 'Dropout'");
    await key({ key: "Enter", ctrlKey: true });

    // The editor's document as it is, unsaved edit included, is what the script runs on.
    expect((sqlCalls()[0].body as { document: GraphDocument }).document).toEqual(before);
    expect(before.name).toBe("renamed first");
    const editor = useEditor.getState();
    expect(editor.doc).toEqual(next);
    expect(editor.history.past.length).toBe(pastBefore + 1);
    expect(editor.graph!.head).toBe(4);
    expect(isDirty(editor)).toBe(false);
    expect(editor.notice).toEqual({ kind: "info", text: "Saved version 4 (the SQL script)." });
    expect([...useSql.getState().touched].sort()).toEqual(["blocks", "blocks/drop"]);
    expect(output().querySelector('[data-testid="sql-change"]')!.textContent).toContain("changed blocks/drop");
    expect(output().textContent).toContain("Saved as version 4");
    expect(output().textContent).toContain("UPDATE: 1 row changed");

    act(() => useEditor.getState().undo());
    expect(canonical(useEditor.getState().doc)).toBe(canonical(before));
    expect(isDirty(useEditor.getState())).toBe(true);
  });

  it("clears the highlight after a few seconds", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    serve({
      "/api/sql": {
        status: 200,
        body: result({ document: withP(0.5), change: { nodes: { added: ["blocks/extra"], removed: [], changed: [] }, edges: { added: [], removed: [] }, model: [], totals: null, weights: null } }),
      },
    });
    useEditor.getState().load(doc, {}); // never saved
    await useSql.getState().run("INSERT INTO nodes (path, type) VALUES ('blocks/extra', 'ReLU')");
    expect(sent.at(-1)).toEqual({ method: "POST", path: "/api/sql", body: { sql: "INSERT INTO nodes (path, type) VALUES ('blocks/extra', 'ReLU')", document: doc } });
    expect(useSql.getState().touched.has("blocks")).toBe(true);
    expect(useEditor.getState().graph).toBeNull();
    vi.advanceTimersByTime(4100);
    expect(useSql.getState().touched.size).toBe(0);
  });

  it("shows a refusal with its statement, the position and the engine's problems by node; nothing changes", async () => {
    serve({
      "/api/graphs/7/sql": {
        status: 400,
        body: {
          error: "the changed graph is invalid", statement: 1, sql: "UPDATE nodes\nSET params = '{}' WHERE id = 'blocks'", position: 13,
          problems: [{ node: "blocks/drop", field: "p", message: "must be at most 1" }, { node: null, field: null, message: "no Output" }],
        },
      },
    });
    await open();
    await typeSql("SELECT 1; UPDATE nodes\nSET params = '{}' WHERE id = 'blocks'");
    await click(runButton());
    await flush();
    const error = output().querySelector('[data-testid="sql-error"]')!;
    expect(error.querySelector('[role="alert"]')!.textContent).toBe("Refused: the changed graph is invalid");
    expect(error.textContent).toContain("in statement 2 at character 14 (line 2)");
    expect(error.querySelector('[data-testid="sql-error-at"]')!.textContent).toBe("SET params = '{}' WHERE id = 'blocks'\n^");
    const items = [...error.querySelectorAll('[data-testid="sql-problems"] li')].map((li) => li.textContent);
    expect(items).toEqual(["blocks/drop (p): must be at most 1", "the model: no Output"]);
    expect(useEditor.getState().doc).toBe(doc);

    await click(error.querySelector('[data-testid="sql-problems"] button'));
    expect(useEditor.getState().selection).toEqual(["blocks"]);
  });

  it("opens the conflict dialog when the graph was saved since the editor's version", async () => {
    const current = version(5);
    serve({ "/api/graphs/7/sql": { status: 409, body: { error: "version 5 was saved since", current_version: current } } });
    await open();
    await typeSql("DELETE FROM nodes WHERE id = 'blocks'");
    await click(runButton());
    await flush();
    expect(useEditor.getState().conflict).toEqual(current);
    expect(useEditor.getState().dialog).toBe("conflict");
    expect(useEditor.getState().doc).toBe(doc);
  });

  it("on a shared link sends only the script, and shows a refused change", async () => {
    serve({ "/api/shared/tok123/sql": { status: 403, body: { error: "this is a shared link, read-only: fork it to change" } } });
    useEditor.getState().load(doc, { graph: { id: 0, name: "tiny", head: 2 }, savedDoc: doc, readOnly: true, shareToken: "tok123" });
    await open();
    expect(view!.container.textContent).toContain("read-only: SELECT only");
    await typeSql("DELETE FROM nodes");
    await click(runButton());
    await flush();
    expect(sqlCalls()).toEqual([{ method: "POST", path: "/api/shared/tok123/sql", body: { sql: "DELETE FROM nodes" } }]);
    expect(output().textContent).toContain("fork it to change");
  });

  it("shows each statement of a script with its own result", async () => {
    serve({
      "/api/graphs/7/sql": {
        status: 200,
        body: result({
          statements: [
            { sql: "SELECT count(*) AS n FROM nodes", kind: "select", columns: ["n"], rows: [[3]], truncated: false, changed: 0 },
            { sql: "UPDATE nodes SET x = 0", kind: "update", columns: [], rows: [], truncated: false, changed: 3 },
            { sql: "SELECT id FROM nodes WHERE 0", kind: "select", columns: ["id"], rows: [], truncated: false, changed: 0 },
          ],
        }),
      },
    });
    await open();
    await typeSql("SELECT count(*) AS n FROM nodes; UPDATE nodes SET x = 0; SELECT id FROM nodes WHERE 0");
    await click(runButton());
    await flush();
    const statements = [...output().querySelectorAll('[data-testid="sql-statement"]')];
    expect(statements).toHaveLength(3);
    expect(statements[0].querySelector("td")!.textContent).toBe("3");
    expect(statements[1].textContent).toContain("3 rows changed");
    expect(statements[2].textContent).toContain("No rows.");
  });

  it("completes table and column names from the schema (Tab or Enter accepts, arrows choose)", async () => {
    serve({});
    await open();
    expect(sent.some((s) => s.path === "/api/sql/schema?trained=0")).toBe(true);

    await typeSql("SELECT * FROM no");
    let list = view!.container.querySelector('[data-testid="sql-suggestions"]')!;
    expect([...list.querySelectorAll("li")].map((li) => li.textContent)).toEqual(["nodes table"]);
    await key({ key: "Tab" });
    expect(textArea().value).toBe("SELECT * FROM nodes");
    expect(view!.container.querySelector('[data-testid="sql-suggestions"]')).toBeNull();

    await typeSql("SELECT * FROM nodes WHERE t");
    list = view!.container.querySelector('[data-testid="sql-suggestions"]')!;
    expect([...list.querySelectorAll("li")].map((li) => li.querySelector(".mono")!.textContent)).toEqual(["type", "to_node"]);
    await key({ key: "ArrowDown" });
    await key({ key: "Enter" });
    expect(textArea().value).toBe("SELECT * FROM nodes WHERE to_node");
    expect(sqlCalls()).toEqual([]); // Enter took the name; it did not run anything
  });

  it("fills the text area from an example chip (those the schema gives for a graph)", async () => {
    serve({});
    await open();
    const chips = [...view!.container.querySelectorAll('[data-testid="sql-examples"] button')];
    expect(chips.map((c) => c.textContent)).toEqual(["Costliest blocks"]);
    await click(chips[0]);
    expect(textArea().value).toBe(schema.examples[0].sql);
  });

  it("offers the weight tables' examples on a saved version with stored weights (a derived model)", async () => {
    useEditor.getState().load(doc, { graph: { id: 7, name: "tiny", head: 3, weights: true }, savedDoc: doc });
    serve({});
    await open();
    expect(sent.some((s) => s.path === "/api/sql/schema?trained=1")).toBe(true);
    const chips = [...view!.container.querySelectorAll('[data-testid="sql-examples"] button')];
    expect(chips.map((c) => c.textContent)).toContain("Freeze layer 0");
  });

  it("runs on the trained model of the finished run open in the drawer, and links the derived model it made", async () => {
    serve({
      "/api/jobs/12/sql": {
        status: 200,
        body: result({
          document: withP(0.3), derived: { graph: 40, version: 1, url: "/g/40" },
          change: { nodes: { added: [], removed: [], changed: ["blocks/drop"] }, edges: { added: [], removed: [] }, model: [], totals: null, weights: null },
        }),
      },
    });
    runsStore.setState({ job: { id: 12, kind: "train", status: "succeeded" } as Job });
    await open();
    const target = view!.container.querySelector<HTMLSelectElement>('[data-testid="sql-target"]')!;
    await act(async () => {
      target.value = "12";
      target.dispatchEvent(new Event("change", { bubbles: true }));
    });
    await flush();
    expect(sent.some((s) => s.path === "/api/sql/schema?trained=1")).toBe(true);
    expect([...view!.container.querySelectorAll('[data-testid="sql-examples"] button')].map((b) => b.textContent))
      .toEqual(["Costliest blocks", "Freeze layer 0"]);
    await typeSql("UPDATE nodes SET params = json_set(params, '$.p', 0.3) WHERE type = 'Dropout'");
    await click(runButton());
    await flush();
    expect(sqlCalls()).toEqual([{ method: "POST", path: "/api/jobs/12/sql", body: { sql: "UPDATE nodes SET params = json_set(params, '$.p', 0.3) WHERE type = 'Dropout'" } }]);
    expect(useEditor.getState().doc).toBe(doc); // the run's model changed, not the canvas
    const link = output().querySelector<HTMLAnchorElement>('[data-testid="sql-derived"]')!;
    expect(link.getAttribute("href")).toBe("/g/40");
  });

  it("follows the version a change of the weights alone was saved as", async () => {
    serve({ "/api/graphs/7/sql": { status: 200, body: result({ version: version(4), created: true }) } });
    await open();
    await typeSql("UPDATE tensors SET frozen = 1");
    await click(runButton());
    await flush();
    expect(useEditor.getState().graph!.head).toBe(4);
    expect(useEditor.getState().doc).toBe(doc);
    expect(isDirty(useEditor.getState())).toBe(false);
  });
});

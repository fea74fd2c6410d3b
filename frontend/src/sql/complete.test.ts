import { describe, expect, it } from "vitest";

import type { SqlSchema } from "./api";
import { accept, suggest, wordAt } from "./complete";

const col = (name: string) => ({ name, type: "TEXT", writable: false, doc: "" });
const table = (...names: string[]) => ({ doc: "", columns: names.map(col) });
const schema: SqlSchema = {
  tables: {
    nodes: table("id", "path", "type", "params", "params_count", "parent"),
    edges: table("from_node", "from_port", "to_node", "to_port"),
    blocks: table("type", "category", "summary"),
  },
  examples: [],
};

const names = (text: string, caret = text.length) => suggest(text, caret, schema).map((s) => s.name);

describe("SQL completion", () => {
  it("offers only tables after FROM, JOIN, UPDATE and INTO", () => {
    expect(names("SELECT * FROM n")).toEqual(["nodes"]);
    expect(names("select * from nodes join e")).toEqual(["edges"]);
    expect(names("UPDATE b")).toEqual(["blocks"]);
    expect(names("INSERT INTO ")).toEqual([]); // no word yet: nothing to complete
  });

  it("offers the columns of the tables the script names first, then tables, then the rest", () => {
    expect(names("SELECT pa FROM nodes", "SELECT pa".length)).toEqual(["path", "params", "params_count", "parent"]);
    expect(names("SELECT fr FROM nodes", "SELECT fr".length)).toEqual(["from_node", "from_port"]);
    // "type" is in nodes and blocks: offered once, as the named table's.
    const found = suggest("SELECT ty FROM blocks", "SELECT ty".length, schema);
    expect(found).toEqual([{ name: "type", detail: "blocks", kind: "column" }]);
  });

  it("offers nothing for a finished name, inside a string, after a digit or a JSON path's dot", () => {
    expect(names("SELECT path")).toEqual([]);
    expect(names("SELECT * FROM nodes WHERE type = 'pa")).toEqual([]);
    expect(names("SELECT 1e")).toEqual([]);
    expect(wordAt("json_set(params, '$.p', 0.2)", 19)).toBeNull();
    expect(suggest("SELECT pa", 9, null)).toEqual([]);
  });

  it("replaces the whole word around the caret when a name is accepted", () => {
    expect(accept("SELECT * FROM no", 16, "nodes")).toEqual({ text: "SELECT * FROM nodes", caret: 19 });
    expect(accept("SELECT pa, id FROM nodes", 9, "params_count")).toEqual({ text: "SELECT params_count, id FROM nodes", caret: 19 });
  });
});

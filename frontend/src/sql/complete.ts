// Completion of table and column names in the SQL console, from GET /api/sql/schema: the word
// being typed before the caret, and the names that start with it. After FROM, JOIN, UPDATE
// or INTO only tables are offered; elsewhere the columns of the tables the script names come
// first, then the tables, then every other column.
import type { SqlSchema } from "./api";

export interface Suggestion {
  name: string;
  /** "table", or the table a column belongs to. */
  detail: string;
  kind: "table" | "column";
}

export interface WordAt {
  word: string;
  start: number;
  end: number;
}

const WORD = /[A-Za-z_][A-Za-z0-9_]*$/;
const TABLE_CONTEXT = /\b(from|join|update|into)\s+$/i;

/** The word that ends at `caret`, or null when the caret follows no word (or sits in a
 * quoted string, where a name would be a value). */
export function wordAt(text: string, caret: number): WordAt | null {
  const before = text.slice(0, caret);
  if (insideString(before)) return null;
  const match = WORD.exec(before);
  if (!match) return null;
  // A number's tail (`1e5`) or a JSON path's (`'$.p'`) is not a name.
  const start = caret - match[0].length;
  if (start > 0 && /[0-9.$]/.test(text[start - 1])) return null;
  let end = caret;
  while (end < text.length && /[A-Za-z0-9_]/.test(text[end])) end++;
  return { word: match[0], start, end };
}

function insideString(before: string): boolean {
  let quote: string | null = null;
  for (const ch of before) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    }
  }
  return quote !== null;
}

/** The tables a script names, in the order the schema lists them. */
function namedTables(text: string, schema: SqlSchema): string[] {
  const lower = text.toLowerCase();
  return Object.keys(schema.tables).filter((t) => new RegExp(`\\b${t.toLowerCase()}\\b`).test(lower));
}

/** The names to offer for the word before `caret` (at most `limit`); none for an exact,
 * complete name or an empty word. */
export function suggest(text: string, caret: number, schema: SqlSchema | null, limit = 8): Suggestion[] {
  if (!schema) return [];
  const at = wordAt(text, caret);
  if (!at || at.end !== caret) return [];
  const prefix = at.word.toLowerCase();
  const tables: Suggestion[] = Object.keys(schema.tables).map((name) => ({ name, detail: "table", kind: "table" }));
  const columnsOf = (table: string): Suggestion[] =>
    (schema.tables[table]?.columns ?? []).map((c) => ({ name: c.name, detail: table, kind: "column" as const }));

  let candidates: Suggestion[];
  if (TABLE_CONTEXT.test(text.slice(0, at.start))) {
    candidates = tables;
  } else {
    const named = namedTables(text, schema);
    const others = Object.keys(schema.tables).filter((t) => !named.includes(t));
    candidates = [...named.flatMap(columnsOf), ...tables, ...others.flatMap(columnsOf)];
  }
  const seen = new Set<string>();
  const found: Suggestion[] = [];
  for (const c of candidates) {
    const key = c.name.toLowerCase();
    if (!key.startsWith(prefix) || seen.has(key)) continue;
    seen.add(key);
    found.push(c);
  }
  if (found.length === 1 && found[0].name.toLowerCase() === prefix) return [];
  return found.slice(0, limit);
}

/** The text with the word before `caret` replaced by `name`, and where the caret goes. */
export function accept(text: string, caret: number, name: string): { text: string; caret: number } {
  const at = wordAt(text, caret);
  if (!at) return { text: text.slice(0, caret) + name + text.slice(caret), caret: caret + name.length };
  return { text: text.slice(0, at.start) + name + text.slice(at.end), caret: at.start + name.length };
}

// A tiny Python tokenizer for highlighting generated code: keywords, comments, strings,
// numbers, decorators and the names after `def`/`class`. Not a parser: it only has to be
// right for the code the engine writes, and never lose a character (the token texts joined
// are always the input).

export type TokenKind = "kw" | "builtin" | "def" | "deco" | "str" | "com" | "num" | "text";

export interface Token {
  kind: TokenKind;
  text: string;
}

export const KEYWORDS: ReadonlySet<string> = new Set([
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
  "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
  "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
  "with", "yield",
]);

export const BUILTINS: ReadonlySet<string> = new Set([
  "self", "super", "print", "len", "range", "int", "float", "str", "bool", "list", "dict",
  "tuple", "set", "isinstance", "getattr", "setattr", "hasattr", "enumerate", "zip", "min",
  "max", "sum", "abs", "type", "object", "Exception", "ValueError", "TypeError",
]);

const COMMENT = /#[^\r\n]*/y;
// An optional prefix (r, b, f, u and their pairs), then a triple- or single-quoted string.
// An unterminated single-quoted string stops at the end of its line; a triple-quoted one at
// the end of the text.
const STRING =
  /(?:[rRbBuUfF]|[rR][bBfF]|[bBfF][rR])?(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:[^"\\\r\n]|\\[\s\S])*(?:"|(?=[\r\n])|$)|'(?:[^'\\\r\n]|\\[\s\S])*(?:'|(?=[\r\n])|$))/y;
const NUMBER =
  /(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?)/y;
const NAME = /[\p{L}_][\p{L}\p{N}_]*/uy;
const DECORATOR = /@[\p{L}_][\p{L}\p{N}_.]*/uy;

function matchAt(pattern: RegExp, source: string, at: number): string | null {
  pattern.lastIndex = at;
  const match = pattern.exec(source);
  return match && match[0].length > 0 ? match[0] : null;
}

/** Split Python source into tokens; adjacent plain text is merged into one token. */
export function tokenizePython(source: string): Token[] {
  const tokens: Token[] = [];
  const push = (kind: TokenKind, text: string) => {
    const last = tokens[tokens.length - 1];
    if (kind === "text" && last && last.kind === "text") last.text += text;
    else tokens.push({ kind, text });
  };
  let expectName = false; // the previous keyword was `def` or `class`
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    let text: string | null;
    if (ch === "#" && (text = matchAt(COMMENT, source, i))) {
      push("com", text);
    } else if ((text = matchAt(STRING, source, i)) && /["']/.test(text)) {
      push("str", text);
      expectName = false;
    } else if (/[0-9.]/.test(ch) && (text = matchAt(NUMBER, source, i)) && /\d/.test(text)) {
      push("num", text);
      expectName = false;
    } else if (ch === "@" && (text = matchAt(DECORATOR, source, i))) {
      push("deco", text);
    } else if ((text = matchAt(NAME, source, i))) {
      if (KEYWORDS.has(text)) {
        push("kw", text);
        expectName = text === "def" || text === "class";
        i += text.length;
        continue;
      }
      push(expectName ? "def" : BUILTINS.has(text) ? "builtin" : "text", text);
      expectName = false;
    } else {
      text = ch;
      push("text", text);
      if (!/\s/.test(ch)) expectName = false;
    }
    i += text.length;
  }
  return tokens;
}

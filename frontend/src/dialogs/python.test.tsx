import { describe, expect, it } from "vitest";

import { tokenizePython, type Token } from "./python";

const kinds = (tokens: Token[], kind: Token["kind"]) => tokens.filter((t) => t.kind === kind).map((t) => t.text);

describe("tokenizePython", () => {
  const sample = [
    "import torch",
    "from torch import nn",
    "",
    "",
    "class TinyMlp(nn.Module):",
    '    """tiny-mlp"""',
    "",
    "    def __init__(self):",
    "        super().__init__()",
    "        self.hidden = nn.Linear(64, 256, bias=True)",
    "        self.drop = nn.Dropout(p=0.1)",
    "",
    "    @torch.no_grad()",
    "    def forward(self, x):",
    "        # x: float32 [B, 64]",
    "        hidden = self.hidden(x)  # [B, 256]",
    "        scale = 1e-3 + 0x1F + 2.5j",
    "        label = f'{x!r} is \\'quoted\\''",
    "        return hidden * scale if label else None",
    "",
  ].join("\n");

  it("never loses or adds a character", () => {
    expect(tokenizePython(sample).map((t) => t.text).join("")).toBe(sample);
    for (const odd of ["'unterminated\nnext", '"""open', "x = .5.", "@", "#", "é = 'ü'", "", "a\r\nb"]) {
      expect(tokenizePython(odd).map((t) => t.text).join("")).toBe(odd);
    }
  });

  it("finds keywords, names after def/class, builtins and decorators", () => {
    const tokens = tokenizePython(sample);
    expect(kinds(tokens, "kw")).toEqual([
      "import", "from", "import", "class", "def", "True", "def", "return", "if", "else", "None",
    ]);
    expect(kinds(tokens, "def")).toEqual(["TinyMlp", "__init__", "forward"]);
    expect(kinds(tokens, "builtin")).toContain("self");
    expect(kinds(tokens, "builtin")).toContain("super");
    expect(kinds(tokens, "deco")).toEqual(["@torch.no_grad"]);
  });

  it("finds comments, strings and numbers", () => {
    const tokens = tokenizePython(sample);
    expect(kinds(tokens, "com")).toEqual(["# x: float32 [B, 64]", "# [B, 256]"]);
    expect(kinds(tokens, "str")).toEqual(['"""tiny-mlp"""', "f'{x!r} is \\'quoted\\''"]);
    expect(kinds(tokens, "num")).toEqual(["64", "256", "0.1", "1e-3", "0x1F", "2.5j"]);
  });

  it("keeps digits inside names and keywords inside names as plain text", () => {
    const tokens = tokenizePython("conv1 = format_if + classy");
    expect(kinds(tokens, "num")).toEqual([]);
    expect(kinds(tokens, "kw")).toEqual([]);
    expect(tokens).toEqual([{ kind: "text", text: "conv1 = format_if + classy" }]);
  });

  it("does not start a comment inside a string, and spans triple-quoted lines", () => {
    const tokens = tokenizePython("s = '# not a comment'  # a comment\nd = \"\"\"one\ntwo\"\"\"");
    expect(kinds(tokens, "str")).toEqual(["'# not a comment'", '"""one\ntwo"""']);
    expect(kinds(tokens, "com")).toEqual(["# a comment"]);
  });

  it("reads string prefixes", () => {
    const tokens = tokenizePython("a = rb'\\d' + b\"x\" + br'y'");
    expect(kinds(tokens, "str")).toEqual(["rb'\\d'", 'b"x"', "br'y'"]);
  });
});

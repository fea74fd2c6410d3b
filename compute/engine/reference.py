"""The block reference for people (docs/blocks.md), written from the catalog itself."""

from __future__ import annotations

import json
from typing import Any

from .blocks import catalog


def _type_of(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        items = schema.get("prefixItems") or ([schema["items"]] if "items" in schema else [])
        inner = ", ".join(_type_of(i) for i in items) or "any"
        return f"[{inner}, …]" if "items" in schema else f"[{inner}]"
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                      ("exclusiveMaximum", "<")):
        if key in schema:
            bounds.append(f"{sign} {schema[key]}")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


# Text under a category's heading, before its blocks: how they go together.
GUIDES: dict[str, str] = {
    "Attention parts": """
These blocks are the pieces `MultiHeadAttention` is made of, so that you can build attention
yourself, look at every intermediate tensor, and change any step. None holds weights.

**Build attention yourself: one causal head.** For an input `x` of `[B, T, D]`:

1. Three `Linear` blocks from `x`, each with `out_features` `d` (the head size; `D` for one
   head): the queries `q`, the keys `k` and the values `v`, each `[B, T, d]`.
2. `Scale` on `q` (by `inverse_sqrt_dim`, dim −1): `q / √d`. Scaling `q` before the product
   is the same as scaling the scores after it, and here `d` is `q`'s last dimension.
3. `MatMul` with `q / √d` into `a`, `k` into `b` and `transpose_b` on: the scores
   `q · kᵀ / √d`, `[B, T, T]`, row `i` holding how well query `i` matches every key.
4. `CausalMask`: `−∞` above the diagonal, so no position sees a later one.
5. `Softmax` with `dim` −1: each row becomes weights that sum to 1. During a run these are
   shown as the head's attention map, like a `MultiHeadAttention` block's.
6. `MatMul` with the weights into `a` and `v` into `b`: each position's weighted average of
   the values, `[B, T, d]`.
7. A `Linear` with `out_features` `D`: the output projection.

With the weights of a `MultiHeadAttention` block with `num_heads` 1 and `causal` on (its
`qkv` rows split in three for `q`, `k`, `v`, and `proj` for the last Linear), this graph
computes the same outputs; Shipyard's tests check it.

For several heads, put `Reshape` (`shape` `[T, h, d]`) and `Transpose` (dims 1 and 2) after
each of `q`, `k` and `v`, giving `[B, h, T, d]`: steps 2 to 6 then work on every head at
once (the scores are `[B, h, T, T]`). Join the heads with `Permute` (`dims` `[2, 1, 3]`)
back to `[B, T, h, d]` and `Reshape` (`[T, D]`) before the output projection.

In a graph file, one head on `[B, 16, 32]`:

```json
{"format": "shipyard.graph/v1", "name": "one head",
 "nodes": [
  {"id": "x", "type": "Input", "params": {"shape": [16, 32]}},
  {"id": "q", "type": "Linear", "params": {"out_features": 32}},
  {"id": "k", "type": "Linear", "params": {"out_features": 32}},
  {"id": "v", "type": "Linear", "params": {"out_features": 32}},
  {"id": "qs", "type": "Scale", "params": {"by": "inverse_sqrt_dim", "dim": -1}},
  {"id": "scores", "type": "MatMul", "params": {"transpose_b": true}},
  {"id": "mask", "type": "CausalMask"},
  {"id": "weights", "type": "Softmax", "params": {"dim": -1}},
  {"id": "mix", "type": "MatMul"},
  {"id": "out", "type": "Linear", "params": {"out_features": 32}},
  {"id": "y", "type": "Output"}],
 "edges": [
  {"from": "x", "to": "q"}, {"from": "x", "to": "k"}, {"from": "x", "to": "v"},
  {"from": "q", "to": "qs"}, {"from": "qs", "to": "scores.a"}, {"from": "k", "to": "scores.b"},
  {"from": "scores", "to": "mask"}, {"from": "mask", "to": "weights"},
  {"from": "weights", "to": "mix.a"}, {"from": "v", "to": "mix.b"},
  {"from": "mix", "to": "out"}, {"from": "out", "to": "y"}]}
```
""",
}


def blocks_markdown() -> str:
    lines = [
        "# Block reference",
        "",
        "Generated from the block catalog by `shipyard blocks --markdown`; do not edit by hand.",
        "Dimensions are counted with the batch where a parameter says so, as in `torch.nn`.",
        "",
    ]
    by_category: dict[str, list[dict[str, Any]]] = {}
    for entry in catalog():
        by_category.setdefault(entry["category"], []).append(entry)
    for category, entries in by_category.items():
        lines += [f"## {category}", ""]
        if category in GUIDES:
            lines += [GUIDES[category].strip(), ""]
        for e in entries:
            outputs = ', '.join(e['outputs']) or '—'
            if e["outputs_from"]:
                outputs = f"one per entry of `{e['outputs_from']}`, by default {outputs}"
            ports = f"inputs: {', '.join(e['inputs']) or '—'}; outputs: {outputs}"
            lines += [f"### {e['type']}", "", f"*{e['summary']}* ({ports})", "", e["explanation"],
                      ""]
            props = e["params_schema"].get("properties", {})
            if props:
                lines += ["| parameter | type | default | meaning |", "| --- | --- | --- | --- |"]
                for name, schema in props.items():
                    default = json.dumps(schema.get("default")) if "default" in schema else "—"
                    lines.append(f"| `{name}` | {_type_of(schema)} | `{default}` | "
                                 f"{schema.get('description', '')} |")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"

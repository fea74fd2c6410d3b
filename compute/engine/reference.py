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

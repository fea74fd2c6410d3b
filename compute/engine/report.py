"""The inspection report: a plain-JSON view of an analysis, and its table rendering."""

from __future__ import annotations

from typing import Any

from .build import Analysis, NodeResult, human_bytes
from .errors import Problem
from .graph import FORMAT, Graph

BYTES_PER_PARAM = 4  # float32 weights


def build_report(graph: Graph | None, analysis: Analysis | None,
                 problems: list[Problem]) -> dict[str, Any]:
    """`problems` are those found before analysis (structure); the analysis adds its own."""
    all_problems = list(problems) + (analysis.problems if analysis else [])
    report: dict[str, Any] = {
        "format": FORMAT,
        "name": graph.name if graph else None,
        "valid": not all_problems,
        "nodes": _nodes(analysis) if analysis else {},
        "totals": _totals(analysis) if analysis else None,
        "problems": [p.to_dict() for p in all_problems],
        "warnings": [w.to_dict() for w in analysis.warnings] if analysis else [],
    }
    return report


def _nodes(analysis: Analysis) -> dict[str, Any]:
    return {node_id: _node(r) for node_id, r in analysis.nodes.items()}


def _node(r: NodeResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": r.type,
        "status": r.status,
        "inputs": {port: spec.to_dict() for port, spec in r.inputs.items()},
        "outputs": {port: spec.to_dict() for port, spec in r.outputs.items()},
        "params": r.params,
        "trainable_params": r.trainable_params,
        "flops": r.flops,
        "activation_bytes": r.activation_bytes,
        "attention": r.attention,
    }
    if r.tied_to is not None:
        entry["tied_to"] = r.tied_to
    if r.body is not None:
        entry["times"] = r.times
        entry["body"] = {"nodes": _nodes(r.body), "totals": _totals(r.body)}
    return entry


def _totals(a: Analysis) -> dict[str, Any]:
    param_bytes = a.params * BYTES_PER_PARAM
    return {
        "params": a.params,
        "trainable_params": a.trainable_params,
        "flops": a.flops,
        "param_bytes": param_bytes,
        "activation_bytes": a.activation_bytes,
        # Weights, plus a forward pass of one sample kept for backward: a lower bound on
        # what training needs (optimizer state adds 2x the weights for Adam).
        "estimated_bytes": param_bytes + a.activation_bytes,
    }


def _count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _shape(entry: dict[str, Any]) -> str:
    outs = entry["outputs"] or entry["inputs"]
    return " ".join(
        "[" + ", ".join(map(str, spec["shape"])) + "]" + ("" if spec["dtype"] == "float32"
                                                       else f" {spec['dtype']}")
        for spec in outs.values())


def render_table(report: dict[str, Any]) -> str:
    """The report as a readable table, nested nodes indented under their Repeat."""
    rows: list[tuple[str, str, str, str, str]] = []

    def walk(nodes: dict[str, Any], indent: str) -> None:
        for node_id, entry in nodes.items():
            note = {"error": "  ✗", "skipped": "  (not reached)"}.get(entry["status"], "")
            kind = entry["type"] + (f" ×{entry['times']}" if entry["type"] == "Repeat" else "")
            rows.append((indent + node_id, kind, _shape(entry) + note, _count(entry["params"]),
                         _count(entry["flops"])))
            if "body" in entry:
                walk(entry["body"]["nodes"], indent + "  ")

    walk(report["nodes"], "")
    header = ("node", "type", "output", "params", "FLOPs")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    totals = report["totals"]
    if totals:
        lines.append("")
        lines.append(
            f"total: {_count(totals['params'])} params ({human_bytes(totals['param_bytes'])}), "
            f"{_count(totals['flops'])}FLOPs per sample, activations "
            f"{human_bytes(totals['activation_bytes'])} per sample")
    for key, label in (("problems", "problem"), ("warnings", "warning")):
        for p in report[key]:
            where = p["node"] or "graph"
            if p["field"]:
                where += f" ({p['field']})"
            lines.append(f"{label}: {where}: {p['message']}")
    lines.append("valid" if report["valid"] else "INVALID")
    return "\n".join(lines)

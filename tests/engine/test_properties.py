"""Properties over many graphs: random valid graphs compile and match their report; random
corruptions come back as problems on the right node, never as another exception."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.engine import (
    GraphError,
    compile_graph,
    example_inputs,
    inspect_graph,
    load_graph,
    load_starter,
    starter_names,
)

from .graphs import document, input_node, nested, node

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

ACTIVATIONS = ["ReLU", "GELU", "SiLU", "Tanh", "Sigmoid"]


@dataclass
class Drawn:
    """A random valid graph, and the shapes its author expects (without the batch)."""

    doc: dict[str, Any]
    shapes: dict[str, list[int]]  # node id -> output shape
    result: str  # the node wired into the Output `y`
    parts: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # Split: port -> shape


@st.composite
def valid_graphs(draw: st.DrawFn) -> Drawn:
    nodes: list[dict[str, Any]] = []
    edges: list[tuple[str, str]] = []
    shapes: dict[str, list[int]] = {}
    parts: dict[str, dict[str, list[int]]] = {}
    kind = draw(st.sampled_from(["vector", "sequence", "tokens", "image"]))
    if kind == "image":
        shape = [draw(st.integers(1, 4)), draw(st.integers(2, 9)), draw(st.integers(2, 9))]
    elif kind == "vector":
        shape = [draw(st.integers(1, 24))]
    else:
        shape = [draw(st.integers(1, 6)), draw(st.integers(1, 24))]
    if kind == "tokens":
        nodes.append(input_node("x", shape[:1], "int64"))
        width = draw(st.integers(1, 24))
        nodes.append(node("emb", "Embedding", num_embeddings=draw(st.integers(2, 50)),
                          embedding_dim=width))
        edges.append(("x", "emb"))
        shapes["emb"] = [shape[0], width]
        current = "emb"
    else:
        nodes.append(input_node("x", shape))
        shapes["x"] = shape
        current = "x"

    def add(node_id: str, type_: str, out: list[int], *sources: str,
            **params: Any) -> None:
        nonlocal current
        nodes.append(node(node_id, type_, **params))
        if len(sources) == 1:
            edges.append((sources[0], node_id))
        else:
            edges.extend((src, f"{node_id}.{port}") for src, port in zip(sources, "ab",
                                                                        strict=True))
        shapes[node_id] = out
        current = node_id

    for i in range(draw(st.integers(1, 7))):
        nid = f"n{i}"
        s = shapes[current]
        if len(s) == 3:
            op = draw(st.sampled_from(["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                                       "AdaptiveAvgPool2d", "Flatten"]))
            c, h, w = s
            if op == "Conv2d":
                k = draw(st.sampled_from([1, 3]))
                out = draw(st.integers(1, 6))
                add(nid, op, [out, h, w], current, out_channels=out, kernel_size=k,
                    padding=k // 2)
            elif op == "MaxPool2d" and min(h, w) >= 2:
                add(nid, op, [c, h // 2, w // 2], current)
            elif op == "AdaptiveAvgPool2d":
                add(nid, op, [c, 1, 1], current)
            elif op == "Flatten":
                add(nid, op, [c * h * w], current)
            else:
                add(nid, "BatchNorm2d" if op == "BatchNorm2d" else "ReLU", s, current)
            continue
        d = s[-1]
        same = [k for k, v in shapes.items() if v == s]
        op = draw(st.sampled_from(["Linear", "activation", "LayerNorm", "RMSNorm", "Dropout",
                                   "Add", "Multiply", "Concat", "Repeat", "Softmax",
                                   "MultiHeadAttention", "Mean", "Split", "Scale", "Slice",
                                   "Transpose", "Permute", "HeadFromParts", "MixtureOfExperts",
                                   "GatedMLP", "RotaryEmbedding"]))
        if op == "Linear":
            out = draw(st.integers(1, 24))
            add(nid, op, [*s[:-1], out], current, out_features=out,
                bias=draw(st.booleans()))
        elif op in ("Add", "Multiply"):
            add(nid, op, s, draw(st.sampled_from(same)), current)
        elif op == "Concat":
            partner = draw(st.sampled_from([k for k, v in shapes.items()
                                            if v[:-1] == s[:-1] and len(v) == len(s)]))
            add(nid, op, [*s[:-1], d + shapes[partner][-1]], partner, current)
        elif op == "MultiHeadAttention" and len(s) == 2:
            heads = draw(st.sampled_from([h for h in range(1, d + 1) if d % h == 0]))
            options: dict[str, Any] = {}
            if draw(st.booleans()):
                options["num_kv_heads"] = draw(st.sampled_from(
                    [g for g in range(1, heads + 1) if heads % g == 0]))
            positions = ["none", "alibi"] + (["rope"] if (d // heads) % 2 == 0 else [])
            options["position"] = draw(st.sampled_from(positions))
            if options["position"] == "rope":
                options["rope_theta"] = draw(st.sampled_from([100.0, 10000.0]))
            if draw(st.booleans()):
                options["window"] = draw(st.integers(1, 8))
            add(nid, op, s, current, num_heads=heads, causal=draw(st.booleans()), **options)
        elif op == "RotaryEmbedding" and len(s) == 2:
            heads = [h for h in range(1, d + 1) if d % h == 0 and (d // h) % 2 == 0]
            if heads:
                add(nid, op, s, current, num_heads=draw(st.sampled_from(heads)))
            else:
                add(nid, "ReLU", s, current)
        elif op == "GatedMLP":
            add(nid, op, s, current, activation=draw(st.sampled_from(["silu", "gelu"])),
                hidden_features=draw(st.one_of(st.none(), st.integers(1, 24))),
                multiple_of=draw(st.integers(1, 16)), bias=draw(st.booleans()))
        elif op == "MixtureOfExperts" and len(s) <= 2:
            experts = draw(st.integers(2, 4))
            add(nid, op, s, current, num_experts=experts, top_k=draw(st.integers(1, experts)),
                hidden_features=draw(st.integers(1, 16)),
                activation=draw(st.sampled_from(["gelu", "silu", "relu"])))
        elif op == "Mean" and len(s) == 2:
            add(nid, op, [d], current)
        elif op == "Split" and d >= 2:
            # Cut the last dimension in two named parts, and join them again (in either order).
            names = draw(st.sampled_from([["a", "b"], ["q", "k"], ["left", "right"]]))
            first = draw(st.integers(1, d - 1))
            equal = d % 2 == 0 and draw(st.booleans())
            sizes = [d // 2, d // 2] if equal else [first, d - first]
            nodes.append(node(nid, op, names=names, **({} if equal else {"sizes": sizes})))
            edges.append((current, nid))
            parts[nid] = {name: [*s[:-1], size] for name, size in zip(names, sizes, strict=True)}
            ends = [f"{nid}.{name}" for name in names]
            if draw(st.booleans()):
                ends.reverse()
            add(f"{nid}_join", "Concat", s, *ends)
        elif op == "Scale":
            if draw(st.booleans()):
                add(nid, op, s, current, by="constant", factor=draw(st.floats(-4, 4)))
            else:
                add(nid, op, s, current, dim=draw(st.sampled_from(
                    [-1, *range(1, len(s) + 1)])))
        elif op == "Slice":
            start = draw(st.integers(-d, d - 1))
            end = draw(st.one_of(st.none(), st.integers(-d, d)))
            step = draw(st.integers(1, 3))
            kept = len(range(d)[start:end:step])
            if kept:
                bounds = {"start": start} if end is None else {"start": start, "end": end}
                add(nid, op, [*s[:-1], kept], current, dim=-1, step=step, **bounds)
            else:
                add(nid, "ReLU", s, current)
        elif op in ("Transpose", "Permute") and len(s) == 2:
            if op == "Transpose":
                add(nid, op, s[::-1], current, dim0=draw(st.sampled_from([1, -2])), dim1=2)
            else:
                add(nid, op, s[::-1], current, dims=[2, 1])
        elif op == "HeadFromParts" and len(s) == 2:
            t = s[0]
            add(f"{nid}s", "MatMul", [t, t], current, current, transpose_b=True)
            add(f"{nid}m", "CausalMask", [t, t], f"{nid}s")
            add(f"{nid}w", "Softmax", [t, t], f"{nid}m")
            values = draw(st.sampled_from(
                [k for k, v in shapes.items() if v[0] == t and len(v) == 2]))
            add(nid, "MatMul", [t, shapes[values][1]], f"{nid}w", values)
        elif op == "Repeat":
            body = nested(
                [{"id": "inp", "type": "Input"}, node("ln", "LayerNorm"),
                 node("fc", "Linear", out_features=d), node("act", draw(st.sampled_from(
                     ACTIVATIONS))), node("res", "Add"), node("out", "Output")],
                [("inp", "ln"), ("ln", "fc"), ("fc", "act"), ("inp", "res.a"),
                 ("act", "res.b"), ("res", "out")])
            nodes.append({"id": nid, "type": "Repeat",
                          "params": {"times": draw(st.integers(1, 3))}, "graph": body})
            edges.append((current, nid))
            shapes[nid] = s
            current = nid
        elif op == "activation":
            add(nid, draw(st.sampled_from(ACTIVATIONS)), s, current)
        elif op in ("LayerNorm", "RMSNorm", "Softmax", "Dropout"):
            add(nid, op, s, current)
        else:
            add(nid, "ReLU", s, current)
    nodes.append(node("y", "Output"))
    edges.append((current, "y"))
    return Drawn(document(nodes, edges), shapes, current, parts)


@SETTINGS
@given(valid_graphs())
def test_random_valid_graphs_compile_and_match_their_report(drawn: Drawn) -> None:
    report = inspect_graph(drawn.doc)
    assert report["valid"], report["problems"]
    for node_id, shape in drawn.shapes.items():
        entry = report["nodes"][node_id]
        assert entry["status"] == "ok"
        assert entry["outputs"]["out"]["shape"] == ["B", *shape], node_id
    for node_id, ports in drawn.parts.items():
        outputs = report["nodes"][node_id]["outputs"]
        assert {p: o["shape"] for p, o in outputs.items()} == {
            p: ["B", *shape] for p, shape in ports.items()}, node_id
    expected = report["nodes"]["y"]["inputs"]["in"]["shape"]
    assert expected == ["B", *drawn.shapes[drawn.result]]
    model = compile_graph(drawn.doc).eval()
    assert report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        out = model(*example_inputs(load_graph(drawn.doc), batch=3))
    assert list(out.shape) == [3, *expected[1:]]


# Corruptions: each returns the broken document and a check on the problems it must cause.

Check = Any  # (problems: list[dict]) -> bool


def _layers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in doc["nodes"] if n["type"] not in ("Input", "Output")]


def _sources(doc: dict[str, Any], node_id: str) -> list[str]:
    return [e["from"] for e in doc["edges"] if e["to"].split(".")[0] == node_id]


FLOAT_ONLY = {"Linear", "Conv2d", "BatchNorm2d", "LayerNorm", "RMSNorm", "Softmax",
              "MultiHeadAttention", "Mean", "MatMul", "Scale", "CausalMask", "MixtureOfExperts",
              "GatedMLP", "RotaryEmbedding", *ACTIVATIONS}


@st.composite
def corrupted_graphs(draw: st.DrawFn) -> tuple[dict[str, Any], str, Check]:
    drawn = draw(valid_graphs())
    doc = copy.deepcopy(drawn.doc)
    layers = _layers(doc)
    single = [n for n in layers if n["type"] not in ("Add", "Multiply", "Concat", "MatMul")]
    first = next(n for n in doc["nodes"] if "x" in _sources(doc, n["id"]))
    kinds = ["unknown_type", "unknown_param", "wrong_param_type", "mismatch", "duplicate_id",
             "bad_id", "missing_format"]
    if single:
        kinds += ["dangling", "bad_port", "two_edges", "cycle"]
    if first["type"] in FLOAT_ONLY or first["type"] == "Embedding":
        kinds.append("wrong_dtype")
    repeats = [n for n in layers if n["type"] == "Repeat"]
    if repeats:
        kinds.append("nested_param")
    kind = draw(st.sampled_from(kinds))

    def named(node_id: str | None, field: str | None = None, text: str = "") -> Check:
        return lambda ps: any(p["node"] == node_id and (field is None or p["field"] == field)
                              and text in p["message"] for p in ps)

    if kind == "dangling":
        target = draw(st.sampled_from(single))["id"]
        doc["edges"].append({"from": "ghost", "to": target})
        return doc, kind, named(None, f"edges[{len(doc['edges']) - 1}].from", "'ghost'")
    if kind == "bad_port":
        victim = draw(st.sampled_from(single))
        doc["edges"].append({"from": "x", "to": f"{victim['id']}.nope"})
        return doc, kind, named(victim["id"], "nope", "has no input port 'nope'")
    if kind == "unknown_type":
        victim = draw(st.sampled_from(layers))
        victim["type"] = victim["type"] + "z"
        victim.pop("graph", None)
        return doc, kind, named(victim["id"], "type", "unknown block type")
    if kind == "unknown_param":
        victim = draw(st.sampled_from(layers))
        victim.setdefault("params", {})["bogus"] = 1
        return doc, kind, named(victim["id"], "bogus", "no parameter 'bogus'")
    if kind == "wrong_param_type":
        with_params = [n for n in doc["nodes"] if n.get("params")]
        victim = draw(st.sampled_from(with_params))
        name = draw(st.sampled_from(sorted(victim["params"])))
        victim["params"][name] = draw(st.sampled_from(["oops", [1.5], {"a": 1}, None]))
        if victim["type"] == "Input" and name == "shape" and victim["params"][name] is None:
            victim["params"][name] = "oops"  # a null shape is a different problem
        if victim["type"] == "Slice" and name == "end" and victim["params"][name] is None:
            victim["params"][name] = "oops"  # null is a valid end: to the end
        return doc, kind, named(victim["id"], name)
    if kind == "wrong_dtype":
        x = doc["nodes"][0]
        x["params"]["dtype"] = "float32" if x["params"]["dtype"] == "int64" else "int64"
        return doc, kind, named(first["id"], None, "gives")
    if kind == "mismatch":
        # A second Input that cannot join the result: another rank for Concat; for Add and
        # Multiply another width, or where the width is 1 (which broadcasts) another dtype.
        width = drawn.shapes[drawn.result]
        merge = draw(st.sampled_from(["Add", "Multiply", "Concat"]))
        other, dtype = [*width[:-1], width[-1] + 1], "float32"
        if merge == "Concat":
            other = [2, *width]
        elif width[-1] == 1:
            other, dtype = width, "int64"
        doc["nodes"][-1:-1] = [input_node("z", other, dtype), node("bad", merge),
                               node("out2", "Output")]
        doc["edges"] += [{"from": drawn.result, "to": "bad.a"}, {"from": "z", "to": "bad.b"},
                         {"from": "bad", "to": "out2"}]
        return doc, kind, named("bad", None, merge)
    if kind == "duplicate_id":
        victim = draw(st.sampled_from(layers))
        doc["nodes"].append(node(victim["id"], "ReLU"))
        return doc, kind, named(victim["id"], "id", "two nodes have the id")
    if kind == "bad_id":
        victim = draw(st.sampled_from(layers))
        bad = draw(st.sampled_from(["9" + victim["id"], victim["id"] + "-x", "a b", "lambda"]))
        old = victim["id"]
        victim["id"] = bad
        for e in doc["edges"]:
            for side in ("from", "to"):
                node_id, dot, port = e[side].partition(".")
                if node_id == old:
                    e[side] = bad + dot + port
        return doc, kind, lambda ps: any(p["field"] == "id" and repr(bad) in p["message"]
                                         for p in ps)
    if kind == "missing_format":
        del doc["format"]
        return doc, kind, named(None, "format", "missing")
    if kind == "two_edges":
        victim = draw(st.sampled_from(single))
        doc["edges"].append({"from": "x", "to": victim["id"]})
        return doc, kind, named(victim["id"], "in", "already takes")
    if kind == "cycle":
        # Rewire the input of an earlier single-input layer to come from a later node.
        order = [n["id"] for n in layers]
        candidates = [n for n in single if order.index(n["id"]) < len(order)]
        target = draw(st.sampled_from(candidates))
        later = [i for i in order[order.index(target["id"]):]
                 if i in drawn.shapes]  # a node of one output (not a Split)
        source = draw(st.sampled_from(later))
        for e in doc["edges"]:
            if e["to"] == target["id"]:
                e["from"] = source
        return doc, kind, lambda ps: any(
            "cycle" in p["message"] and target["id"] in p["message"] for p in ps)
    assert kind == "nested_param"
    rep = draw(st.sampled_from(repeats))
    rep["graph"]["nodes"][1].setdefault("params", {})["bogus"] = True
    return doc, kind, named(f"{rep['id']}/ln", "bogus")


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_graphs())
def test_random_corruptions_are_reported_on_the_right_node(
        case: tuple[dict[str, Any], str, Check]) -> None:
    doc, kind, check = case
    report = inspect_graph(doc)
    assert report["valid"] is False, kind
    assert check(report["problems"]), (kind, report["problems"])
    json.dumps(report)
    with pytest.raises(GraphError) as caught:
        load_graph(doc)
    assert caught.value.problems


# Arbitrary damage: whatever a hand-edited file holds, the answer is a report or GraphError.

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(10**9, 10**20),
    st.floats(allow_nan=False), st.sampled_from(["", "x", "Linear", "Repeat", "x.out", "y.in",
                                                 "int64", "same", "-1", "shipyard.graph/v1"]),
    st.lists(st.integers(-2, 5), max_size=3), st.builds(dict),
    st.builds(lambda: {"nodes": [], "edges": []}))  # fresh objects: the test mutates them


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def damaged_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = load_starter(draw(st.sampled_from(starter_names())))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) or not isinstance(parent, dict):
            parent[path[-1]] = draw(JUNK)
        else:
            del parent[path[-1]]
    return doc


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(damaged_documents())
def test_damaged_documents_give_a_report_and_never_another_exception(doc: dict) -> None:
    report = inspect_graph(doc, flops=False)
    json.dumps(report)
    assert report["valid"] == (not report["problems"])
    try:
        load_graph(doc)
    except GraphError as error:
        assert error.problems and not report["valid"]
    else:
        assert report["valid"]

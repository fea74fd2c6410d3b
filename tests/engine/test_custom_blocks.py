"""Blocks from My blocks: a saved graph used as a `Custom` node, through its pinned copy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compute.engine import (
    Limits,
    compile_graph,
    export_onnx,
    export_pytorch,
    inspect_graph,
    load_graph,
)
from compute.engine.build import class_name
from compute.engine.export import pytorch_source

from .graphs import document, input_node, nested, node, problems_of
from .test_parity import import_file


def mlp_graph() -> dict[str, Any]:
    """The saved graph's nodes and edges: two Inputs, two Outputs."""
    return nested(
        [input_node("a", [8]), input_node("b", [8]), node("s", "Add"),
         node("lin", "Linear", out_features=12), node("hidden", "Output"),
         node("act", "ReLU"), node("gate", "Output")],
        [("a", "s.a"), ("b", "s.b"), ("s", "lin"), ("lin", "hidden"), ("s", "act"),
         ("act", "gate")])


def custom(node_id: str, graph: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    given = {"source": "12", "version": 3, "name": "Mlp", **params}
    return {"id": node_id, "type": "Custom", "params": given,
            "graph": graph if graph is not None else mlp_graph()}


def model(**members: Any) -> dict[str, Any]:
    """x, y → ffn → ffn2 (fed ffn's gate and y) → out; ffn's hidden → side."""
    return document(
        [input_node("x", [8]), input_node("y", [8]), custom("ffn"), custom("ffn2"),
         node("out", "Output"), node("side", "Output")],
        [("x", "ffn.a"), ("y", "ffn.b"), ("ffn.gate", "ffn2.a"), ("y", "ffn2.b"),
         ("ffn2.hidden", "out"), ("ffn.hidden", "side")], name="Uses my block", **members)


def test_a_custom_node_has_its_graphs_inputs_and_outputs_as_ports() -> None:
    graph = load_graph(model())
    ffn = graph.node("ffn")
    assert ffn.input_ports == ("a", "b")
    assert ffn.output_ports == ("hidden", "gate")


def test_shapes_parameters_and_flops_come_from_the_graph_inside() -> None:
    report = inspect_graph(model())
    assert report["valid"], report["problems"]
    ffn = report["nodes"]["ffn"]
    assert ffn["outputs"] == {"hidden": {"shape": ["B", 12], "dtype": "float32"},
                              "gate": {"shape": ["B", 8], "dtype": "float32"}}
    assert ffn["params"] == 8 * 12 + 12
    assert report["totals"]["params"] == 2 * (8 * 12 + 12)
    assert ffn["flops"] == ffn["body"]["totals"]["flops"] > 0
    assert set(ffn["body"]["nodes"]) == {"a", "b", "s", "lin", "hidden", "act", "gate"}


def test_a_port_the_block_does_not_have_is_named_with_the_ones_it_has() -> None:
    doc = model()
    doc["edges"][0]["to"] = "ffn.c"
    problems = problems_of(inspect_graph(doc))
    assert ("ffn", "c", "Custom has no input port 'c'; its inputs: a, b") in problems


def test_problems_inside_are_reported_by_their_path() -> None:
    inner = mlp_graph()
    inner["nodes"][3]["params"] = {"out_features": 0}
    doc = model()
    doc["nodes"][2] = custom("ffn", inner)
    nodes = {p[0] for p in problems_of(inspect_graph(doc))}
    assert "ffn/lin" in nodes


def test_an_input_shape_inside_must_match_what_arrives() -> None:
    doc = model()
    doc["nodes"][0] = input_node("x", [9])
    problems = problems_of(inspect_graph(doc))
    assert any(n == "ffn/a" and f == "shape" and "feeds float32 [B, 9]" in m
               for n, f, m in problems), problems


def test_a_dtype_the_block_does_not_take_is_refused_on_the_node() -> None:
    doc = model()
    doc["nodes"][0] = input_node("x", [8], dtype="int64")
    problems = problems_of(inspect_graph(doc))
    assert any(n == "ffn" and "input 'a' takes float32" in m for n, _, m in problems), problems


def test_a_blocks_graph_needs_an_input_and_an_output() -> None:
    inner = nested([input_node("a", [8]), node("act", "ReLU")], [("a", "act")])
    doc = document([input_node("x", [8]), custom("ffn", inner), node("out", "Output")],
                   [("x", "ffn.a"), ("ffn.anything", "out")])
    messages = [m for _, _, m in problems_of(inspect_graph(doc))]
    assert any("at least one Input and one Output" in m for m in messages), messages


@pytest.mark.parametrize(("params", "field"), [
    ({"source": "../etc/passwd"}, "source"),
    ({"source": "share:" + "a" * 65}, "source"),
    ({"source": 12}, "source"),
    ({"version": 0}, "version"),
    ({"version": "3"}, "version"),
    ({"version": 1.5}, "version"),
    ({"name": "x" * 101}, "name"),
    ({"name": ["Mlp"]}, "name"),
])
def test_hostile_parameters_are_refused_on_their_field(params: dict[str, Any],
                                                       field: str) -> None:
    doc = model()
    doc["nodes"][2] = custom("ffn", **params)
    problems = problems_of(inspect_graph(doc))
    assert any(n == "ffn" and f == field for n, f, _ in problems), problems


def test_the_compiled_model_computes_the_blocks_graph() -> None:
    module = compile_graph(model(), seed=3).eval()
    x, y = torch.randn(4, 8), torch.randn(4, 8)
    with torch.no_grad():
        got = module(x, y)
        lin, lin2 = module.ffn.lin, module.ffn2.lin
        gate = torch.relu(x + y)
        expected = {"out": lin2(gate + y), "side": lin(x + y)}
    torch.testing.assert_close(got, expected)
    assert type(module.ffn).__name__ == "Mlp"


def test_export_writes_one_class_per_block_used_by_every_node(tmp_path: Path) -> None:
    module = compile_graph(model(), seed=3).eval()
    path = export_pytorch(module, tmp_path / "model.py", weights=tmp_path / "w.pt")
    source = path.read_text()
    assert source.count("class Mlp(nn.Module):") == 1
    assert "self.ffn = Mlp()" in source and "self.ffn2 = Mlp()" in source
    assert "return lin, act" in source  # a block's several outputs: a tuple
    twin = getattr(import_file(path), class_name("Uses my block", "Model"))()
    twin.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    x, y = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(twin.eval()(x, y), module(x, y))


def test_blocks_fed_other_shapes_get_classes_of_their_own() -> None:
    inner = mlp_graph()
    for entry in inner["nodes"][:2]:
        del entry["params"]["shape"]  # the shapes come from outside
    doc = document(
        [input_node("x", [8]), input_node("y", [4]), custom("ffn", inner),
         custom("ffn2", copy.deepcopy(inner)), node("out", "Output"), node("side", "Output")],
        [("x", "ffn.a"), ("x", "ffn.b"), ("y", "ffn2.a"), ("y", "ffn2.b"),
         ("ffn.hidden", "out"), ("ffn2.gate", "side")])
    module = compile_graph(doc)
    source = pytorch_source(module.meta["shipyard"])
    assert "self.ffn = Mlp()" in source and "self.ffn2 = Mlp2()" in source


def test_a_hostile_name_reaches_the_file_only_escaped(tmp_path: Path) -> None:
    name = '"""\nimport os; os.system("echo pwned")\n#'
    doc = model()
    doc["nodes"][2] = custom("ffn", name=name)
    doc["nodes"][3] = custom("ffn2", name=name)
    module = compile_graph(doc).eval()
    path = export_pytorch(module, tmp_path / "model.py", weights=tmp_path / "w.pt")
    source = path.read_text()
    assert "\nimport os" not in source
    assert source.count("class ImportOsOsSystemEchoPwned(nn.Module):") == 1
    import_file(path)  # it still reads as Python


def test_onnx_runtime_matches_the_compiled_model(tmp_path: Path) -> None:
    module = compile_graph(model(), seed=5).eval()
    path = export_onnx(module, tmp_path / "model.onnx")
    x, y = torch.randn(5, 8), torch.randn(5, 8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy(), "y": y.numpy()})
    with torch.no_grad():
        expected = module(x, y)
    for value, name in zip(got, ("out", "side"), strict=True):
        assert float(np.max(np.abs(value - expected[name].numpy()))) <= 1e-5


def block_using_a_block() -> dict[str, Any]:
    """A saved graph (one Input, one Output) that itself uses Mlp."""
    return nested(
        [input_node("h", [8]), custom("inner"), node("o", "Output")],
        [("h", "inner.a"), ("h", "inner.b"), ("inner.hidden", "o")])


def test_a_block_may_use_another_block() -> None:
    doc = document([input_node("x", [8]), custom("outer", block_using_a_block(), source="7",
                                                   version=1, name="Wrapper"),
                    node("y", "Output")],
                   [("x", "outer.h"), ("outer.o", "y")])
    module = compile_graph(doc).eval()
    x = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.outer.inner.lin(x + x))
    source = pytorch_source(module.meta["shipyard"])
    assert "class Wrapper(nn.Module):" in source and "class Mlp(nn.Module):" in source


def test_blocks_inside_blocks_stop_at_the_depth_limit() -> None:
    doc = document([input_node("x", [8]), custom("outer", block_using_a_block()),
                    node("y", "Output")],
                   [("x", "outer.h"), ("outer.o", "y")])
    report = inspect_graph(doc, limits=Limits(max_depth=1))
    assert any(p["node"] == "outer/inner" and p["field"] == "graph"
               and "SHIPYARD_MAX_DEPTH" in p["message"] for p in report["problems"])


def test_an_init_inside_a_block_is_left_to_the_graph_using_it() -> None:
    inner = mlp_graph()
    inner["nodes"].append(node("init", "Init", scheme="normal", std=5.0))
    doc = model()
    doc["nodes"][2] = custom("ffn", inner)
    report = inspect_graph(doc)
    assert report["valid"], report["problems"]
    module = compile_graph(doc, seed=0)
    assert float(module.ffn.lin.weight.std()) < 1.0  # PyTorch's default, not N(0, 5²)

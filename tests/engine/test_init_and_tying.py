"""How weights start (the `init` parameter and the Init node) and weight tying (`tie_to`).

A drawn model must start as its drawing says, and the standalone PyTorch file must start the
same way for the same seed: "what you draw is exactly what runs".
"""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compute.engine import (
    compile_graph,
    example_inputs,
    export_onnx,
    export_pytorch,
    inspect_graph,
    load_graph,
    load_starter,
)
from compute.engine.training import save_weights

from .graphs import chain, document, input_node, node, problems_of, repeat


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"gen_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def gpt(*, layers: int = 3, width: int = 96, vocab: int = 64, init: dict[str, Any] | None = None,
        tie: bool = False) -> dict[str, Any]:
    """A small pre-norm GPT as a user draws it, with an Init node when `init` is given."""
    body = {
        "nodes": [
            {"id": "x", "type": "Input"},
            node("ln1", "LayerNorm"),
            node("attn", "MultiHeadAttention", num_heads=4, causal=True),
            node("res1", "Add"),
            node("ln2", "LayerNorm"),
            node("fc", "Linear", out_features=4 * width),
            node("gelu", "GELU"),
            node("proj", "Linear", out_features=width),
            node("drop", "Dropout", p=0.1),
            node("res2", "Add"),
            node("y", "Output"),
        ],
        "edges": [{"from": a, "to": b} for a, b in [
            ("x", "ln1"), ("ln1", "attn"), ("attn", "res1.a"), ("x", "res1.b"),
            ("res1", "ln2"), ("ln2", "fc"), ("fc", "gelu"), ("gelu", "proj"), ("proj", "drop"),
            ("drop", "res2.a"), ("res1", "res2.b"), ("res2", "y")]],
    }
    head: dict[str, Any] = {"out_features": vocab, "bias": False}
    if tie:
        head["tie_to"] = "wte"
    nodes = [
        input_node("tokens", [32], "int64"),
        node("wte", "Embedding", num_embeddings=vocab, embedding_dim=width),
        node("wpe", "PositionalEmbedding", max_len=32),
        {"id": "blocks", "type": "Repeat", "params": {"times": layers}, "graph": body},
        node("ln_f", "LayerNorm"),
        node("head", "Linear", **head),
        node("logits", "Output"),
    ]
    if init is not None:
        nodes.append(node("init", "Init", **init))
    return document(nodes, [("tokens", "wte"), ("wte", "wpe"), ("wpe", "blocks"),
                            ("blocks", "ln_f"), ("ln_f", "head"), ("head", "logits")])


def stds(model: torch.nn.Module) -> dict[str, float]:
    return {name: p.std().item() for name, p in model.named_parameters()}


# The GPT-2 scheme.


def test_gpt2_scheme_starts_matrices_at_002_and_residual_projections_scaled_by_depth() -> None:
    layers = 3
    model = compile_graph(gpt(layers=layers, init={"scheme": "gpt2"}), seed=0)
    s = stds(model)
    residual = 0.02 / math.sqrt(2 * layers)
    for name in ("wte.weight", "wpe.weight", "head.weight", "blocks.0.attn.qkv.weight",
                 "blocks.2.fc.weight"):
        assert s[name] == pytest.approx(0.02, rel=0.1), name
    # The attention's output projection and the MLP's last Linear (it feeds an Add through
    # a Dropout) write into the residual stream: 2 per layer.
    for copy_ in range(layers):
        for name in (f"blocks.{copy_}.attn.proj.weight", f"blocks.{copy_}.proj.weight"):
            assert s[name] == pytest.approx(residual, rel=0.1), name
    params = dict(model.named_parameters())
    assert all(torch.count_nonzero(p) == 0 for n, p in params.items() if n.endswith("bias"))
    assert torch.equal(params["ln_f.weight"], torch.ones(96))  # norms keep ones and zeros


def test_without_an_init_node_blocks_keep_pytorchs_defaults() -> None:
    s = stds(compile_graph(gpt(), seed=0))
    assert s["wte.weight"] == pytest.approx(1.0, rel=0.1)  # nn.Embedding draws N(0, 1)
    fan_in = 96  # nn.Linear: uniform(±1/√in), std 1/√(3·in)
    assert s["blocks.0.fc.weight"] == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.1)


def test_a_block_can_choose_for_itself_against_the_graphs_default() -> None:
    doc = gpt(init={"scheme": "gpt2"})
    nodes = {n["id"]: n for n in doc["nodes"]}
    nodes["wte"]["params"]["init"] = "pytorch"
    nodes["head"]["params"] |= {"init": "normal", "init_std": 0.5}
    s = stds(compile_graph(doc, seed=0))
    assert s["wte.weight"] == pytest.approx(1.0, rel=0.1)
    assert s["head.weight"] == pytest.approx(0.5, rel=0.1)
    assert s["wpe.weight"] == pytest.approx(0.02, rel=0.1)


def test_normal_scheme_uses_its_std_everywhere_and_no_residual_scaling() -> None:
    s = stds(compile_graph(gpt(init={"scheme": "normal", "std": 0.05}), seed=0))
    assert s["blocks.1.attn.proj.weight"] == pytest.approx(0.05, rel=0.1)
    assert s["blocks.1.proj.weight"] == pytest.approx(0.05, rel=0.1)


def test_the_char_gpt_starter_uses_gpt2s_scheme() -> None:
    model = compile_graph(load_starter("char_gpt"), seed=0)
    s = stds(model)
    assert s["wte.weight"] == pytest.approx(0.02, rel=0.1)
    assert s["blocks.3.attn.proj.weight"] == pytest.approx(0.02 / math.sqrt(8), rel=0.1)


def test_the_standalone_file_starts_with_the_same_weights_for_the_same_seed(
        tmp_path: Path) -> None:
    model = compile_graph(gpt(init={"scheme": "gpt2"}, tie=True), seed=7)
    path = export_pytorch(model, tmp_path / "model.py", weights=False)
    source = path.read_text()
    assert "def init_weights(" in source
    assert "self.head.weight = self.wte.weight" in source
    generated = import_file(path)
    torch.manual_seed(7)
    fresh = generated.Model()
    ours, theirs = model.state_dict(), fresh.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_init_node_is_refused_inside_a_repeat_and_twice() -> None:
    doc = chain([4, 8], repeat("blocks", 2, node("lin", "Linear", out_features=8),
                               node("init", "Init")))
    # the Init inside is not wired: the body's chain helper wired it, so rebuild the body
    body = doc["nodes"][1]["graph"]
    body["edges"] = [e for e in body["edges"] if "init" not in (e["from"], e["to"])]
    body["edges"].append({"from": "lin", "to": "y"})
    report = inspect_graph(doc)
    assert any(n == "blocks/init" and "top-level canvas" in m
               for n, _, m in problems_of(report)), problems_of(report)

    doc = gpt(init={"scheme": "gpt2"})
    doc["nodes"].append(node("init2", "Init"))
    report = inspect_graph(doc)
    assert ("init2", None, "the graph has 2 Init nodes (init, init2); keep one") in (
        problems_of(report))


def test_init_node_is_not_reported_as_unused_and_builds_no_module() -> None:
    report = inspect_graph(gpt(init={"scheme": "gpt2"}))
    assert report["valid"], report["problems"]
    assert not [w for w in report["warnings"] if w["node"] == "init"]
    assert "init" not in dict(compile_graph(gpt(init={"scheme": "gpt2"})).named_children())


@pytest.mark.parametrize("params", [
    {"init": "xavier"}, {"init_std": 0}, {"init_std": -1}, {"init_std": "0.1"},
    {"init_std": 1e9}])
def test_bad_init_parameters_are_named(params: dict[str, Any]) -> None:
    doc = chain([8], node("lin", "Linear", out_features=4, **params))
    report = inspect_graph(doc)
    (field,) = params
    assert [(n, f) for n, f, _ in problems_of(report)] == [("lin", field)]


# Weight tying.


def test_a_tied_head_shares_the_embeddings_table_counted_once(tmp_path: Path) -> None:
    untied = inspect_graph(gpt())
    tied = inspect_graph(gpt(tie=True))
    assert tied["valid"], tied["problems"]
    assert untied["totals"]["params"] - tied["totals"]["params"] == 64 * 96
    model = compile_graph(gpt(tie=True), seed=0)
    assert model.head.weight is model.wte.weight
    assert sum(p.numel() for p in model.parameters()) == tied["totals"]["params"]
    head = tied["nodes"]["head"]
    assert head["params"] == 0  # a Linear without bias whose weight is the embedding's
    assert head["tied_to"] == "wte"


def test_a_tied_model_trains_saves_and_exports_still_tied(tmp_path: Path) -> None:
    model = compile_graph(gpt(tie=True, init={"scheme": "gpt2"}), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    (tokens,) = example_inputs(load_graph(gpt(tie=True)), batch=4)
    loss = model(tokens).logsumexp(-1).mean()
    loss.backward()
    opt.step()
    assert model.head.weight is model.wte.weight

    weights = save_weights(model, tmp_path / "model.safetensors")  # no shared-memory error
    from safetensors.torch import load_file
    again = compile_graph(gpt(tie=True), seed=1)
    again.load_state_dict(load_file(str(weights)))
    assert again.head.weight is again.wte.weight
    assert torch.equal(again.wte.weight, model.wte.weight)

    generated = import_file(export_pytorch(model, tmp_path / "model.py"))
    standalone = generated.Model()
    standalone.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert standalone.head.weight is standalone.wte.weight
    model.eval()
    standalone.eval()
    with torch.no_grad():
        assert torch.allclose(standalone(tokens), model(tokens), atol=1e-6)
        onnx_path = export_onnx(model, tmp_path / "model.onnx")
        session = ort.InferenceSession(str(onnx_path))
        (ours,) = session.run(None, {"tokens": tokens.numpy()})
        np.testing.assert_allclose(ours, model(tokens).numpy(), atol=1e-5)


@pytest.mark.parametrize(("change", "words"), [
    ({"tie_to": "nowhere"}, "tie_to names 'nowhere', but that is no node in this graph"),
    ({"tie_to": "ln_f"}, "tie_to names 'ln_f', but that is a LayerNorm in this graph"),
    ({"tie_to": "wte", "out_features": 50},
     "a weight tied to wte must be [64, 96] (its num_embeddings × embedding_dim), but this "
     "Linear's is [50, 96]"),
])
def test_tying_to_something_that_cannot_be_tied_is_refused_in_words(
        change: dict[str, Any], words: str) -> None:
    doc = gpt()
    head = next(n for n in doc["nodes"] if n["id"] == "head")
    head["params"] |= change
    problems = problems_of(inspect_graph(doc))
    assert any(n == "head" and f == "tie_to" and m.startswith(words) for n, f, m in problems), (
        problems)


@pytest.mark.parametrize("hostile", ["wte\n", "wte; import os", "", "a" * 65, 3, ["wte"],
                                     "self.wte.weight", "__import__('os')"])
def test_tie_to_is_an_id_never_code(hostile: Any) -> None:
    doc = gpt()
    head = next(n for n in doc["nodes"] if n["id"] == "head")
    head["params"]["tie_to"] = hostile
    problems = problems_of(inspect_graph(doc))
    assert [(n, f) for n, f, _ in problems] == [("head", "tie_to")]


def test_a_tied_graph_copied_and_retied_inside_a_repeat_body_is_refused() -> None:
    # tie_to names a node of the same graph only: an Embedding outside a Repeat is not
    # visible from inside it.
    doc = gpt()
    body = doc["nodes"][3]["graph"]
    body_nodes = {n["id"]: n for n in body["nodes"]}
    body_nodes["fc"]["params"]["tie_to"] = "wte"
    problems = problems_of(inspect_graph(copy.deepcopy(doc)))
    assert any(n == "blocks/fc" and f == "tie_to" for n, f, _ in problems), problems

"""The three forms of a model compute the same thing: the compiled fx module, the standalone
PyTorch file, and the ONNX file run by ONNX Runtime (with another batch size than the one it
was exported with, to prove the batch dimension is dynamic)."""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from compute.engine import (
    compile_graph,
    example_inputs,
    export_onnx,
    export_pytorch,
    load_graph,
    load_starter,
    starter_names,
)
from compute.engine.build import class_name

from .graphs import chain, document, input_node, node, repeat

EXPORT_BATCH = 2  # what export_onnx traces with
RUN_BATCH = 5


@dataclass
class Exported:
    name: str
    model: torch.fx.GraphModule
    onnx_path: Path
    training_after_export: bool


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"shipyard_export_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that inspect and dataclasses can find it
    spec.loader.exec_module(module)
    return module


def standalone(model: torch.fx.GraphModule, directory: Path) -> torch.nn.Module:
    """Write the model as a PyTorch file with its weights, import it, load them."""
    graph = model.meta["shipyard"].graph
    source = export_pytorch(model, directory / "model.py", weights=directory / "weights.pt")
    cls = getattr(import_file(source), class_name(graph.name, "Model"))
    twin = cls()
    twin.load_state_dict(torch.load(directory / "weights.pt", weights_only=True))
    return twin.eval()


@pytest.fixture(scope="module", params=starter_names())
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    name = request.param
    model = compile_graph(load_starter(name), seed=1)
    path = tmp_path_factory.mktemp(name) / f"{name}.onnx"
    start = time.perf_counter()
    export_onnx(model, path)
    print(f"{name}: ONNX export took {time.perf_counter() - start:.2f} s")
    return Exported(name, model, path, training_after_export=model.training)


def inputs_for(model: torch.fx.GraphModule, batch: int) -> tuple[torch.Tensor, ...]:
    return example_inputs(model.meta["shipyard"].graph, batch=batch, seed=11)


def test_standalone_pytorch_file_computes_what_the_compiled_model_computes(
        exported: Exported, tmp_path: Path) -> None:
    model = exported.model.eval()
    twin = standalone(model, tmp_path)
    args = inputs_for(model, RUN_BATCH)
    with torch.no_grad():
        expected, got = model(*args), twin(*args)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert twin.state_dict().keys() == model.state_dict().keys()


def test_onnx_file_passes_the_checker_and_names_inputs_and_outputs_by_node_id(
        exported: Exported) -> None:
    onnx.checker.check_model(str(exported.onnx_path))
    proto = onnx.load(str(exported.onnx_path))
    graph = exported.model.meta["shipyard"].graph
    assert [i.name for i in proto.graph.input] == [n.id for n in graph.inputs]
    assert [o.name for o in proto.graph.output] == [n.id for n in graph.outputs]


def test_onnx_runtime_matches_the_compiled_model_on_another_batch_size(
        exported: Exported) -> None:
    model = exported.model.eval()
    graph = model.meta["shipyard"].graph
    args = inputs_for(model, RUN_BATCH)
    assert RUN_BATCH != EXPORT_BATCH
    session = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    feeds = {n.id: a.numpy() for n, a in zip(graph.inputs, args, strict=True)}
    (got,) = session.run(None, feeds)
    with torch.no_grad():
        expected = model(*args).numpy()
    assert got.shape == expected.shape and got.shape[0] == RUN_BATCH
    diff = float(np.max(np.abs(got - expected)))
    print(f"{exported.name}: max |onnx - torch| = {diff:.2e}")
    assert diff <= 1e-4


def test_export_onnx_leaves_a_training_model_in_training_mode(exported: Exported) -> None:
    # The fixture exported a freshly compiled model, which is in training mode.
    assert exported.training_after_export


def test_standalone_file_handles_several_inputs_outputs_and_nested_repeats(
        tmp_path: Path) -> None:
    body = repeat("inner", 2, node("ln", "LayerNorm"), node("lin", "Linear", out_features=8))
    doc = document(
        [input_node("a", [3, 8]), input_node("ids", [3], "int64"),
         node("emb", "Embedding", num_embeddings=10, embedding_dim=8), node("sum", "Add"),
         repeat("outer", 2, body), node("pooled", "Mean"), node("main", "Output"),
         node("aux", "Output")],
        [("a", "sum.a"), ("ids", "emb"), ("emb", "sum.b"), ("sum", "outer"),
         ("outer", "pooled"), ("pooled", "main"), ("emb", "aux")],
        name="two heads")
    model = compile_graph(doc).eval()
    twin = standalone(model, tmp_path)
    args = example_inputs(load_graph(doc), batch=4)
    with torch.no_grad():
        expected, got = model(*args), twin(*args)
    assert got.keys() == expected.keys() == {"main", "aux"}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-6)
    assert "outer.1.inner.0.lin.weight" in twin.state_dict()


def test_standalone_file_reads_like_the_graph(tmp_path: Path) -> None:
    model = compile_graph(chain([64], node("hidden", "Linear", out_features=32),
                                node("act", "ReLU")))
    source = export_pytorch(model, tmp_path / "m.py").read_text()
    assert "self.hidden = nn.Linear(64, 32, bias=True)" in source
    assert "hidden = self.hidden(x)  # [B, 32]" in source
    assert "def forward(self, x):" in source
    assert "compute" not in source.split('"""', 2)[2]  # needs only torch


def test_export_pytorch_keeps_the_modules_current_weights(tmp_path: Path) -> None:
    """Trained weights travel with the file: model.py gets model.pt beside it."""
    import runpy

    model = compile_graph(chain([8], node("hidden", "Linear", out_features=4)))
    with torch.no_grad():
        model.hidden.weight.fill_(0.5)  # stands in for training
    export_pytorch(model, tmp_path / "m.py")
    namespace = runpy.run_path(str(tmp_path / "m.py"))
    twin = next(v for v in namespace.values()
                if isinstance(v, type) and issubclass(v, torch.nn.Module)
                and v.__module__ == "<run_path>")()
    twin.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = torch.randn(3, 8)
    assert torch.equal(twin(x), model(x))
    assert torch.all(twin.hidden.weight == 0.5)
    export_pytorch(model, tmp_path / "code_only.py", weights=False)
    assert not (tmp_path / "code_only.pt").exists()


# The blocks of Llama-style models and every option of attention, each on its own.

LM_BLOCKS = {
    "mha_gqa_rope_causal": node("attn", "MultiHeadAttention", num_heads=4, num_kv_heads=2,
                                position="rope", causal=True, bias=False),
    "mha_multi_query_rope_theta": node("attn", "MultiHeadAttention", num_heads=4,
                                       num_kv_heads=1, position="rope", rope_theta=500.0),
    "mha_alibi_causal_6_heads": node("attn", "MultiHeadAttention", num_heads=6,
                                     position="alibi", causal=True),
    "mha_alibi_window": node("attn", "MultiHeadAttention", num_heads=2, position="alibi",
                             window=3),
    "mha_window_causal_gqa": node("attn", "MultiHeadAttention", num_heads=6, num_kv_heads=3,
                                  window=2, causal=True),
    "rotary_embedding": node("rope", "RotaryEmbedding", num_heads=3, theta=100.0),
    "gated_mlp_swiglu": node("mlp", "GatedMLP", hidden_features=40),
    "gated_mlp_geglu_bias": node("mlp", "GatedMLP", activation="gelu", multiple_of=16,
                                 bias=True),
}


@pytest.mark.parametrize("name", LM_BLOCKS)
def test_language_model_blocks_compute_the_same_compiled_exported_and_in_onnx_runtime(
        name: str, tmp_path: Path) -> None:
    model = compile_graph(chain([7, 24], LM_BLOCKS[name]), seed=3).eval()
    graph = model.meta["shipyard"].graph
    twin = standalone(model, tmp_path)
    path = export_onnx(model, tmp_path / "model.onnx")
    args = inputs_for(model, RUN_BATCH)
    with torch.no_grad():
        expected, got = model(*args), twin(*args)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert twin.state_dict().keys() == model.state_dict().keys()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {graph.inputs[0].id: args[0].numpy()})
    assert onnx_out.shape == tuple(expected.shape)
    assert float(np.max(np.abs(onnx_out - expected.numpy()))) <= 1e-4

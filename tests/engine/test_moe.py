"""MixtureOfExperts: routing that really selects, the load-balancing loss, and the same
numbers from the compiled model, the standalone PyTorch file and ONNX Runtime."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compute.engine import compile_graph, example_inputs, export_onnx, inspect_graph
from compute.engine.layers import MixtureOfExperts

from .graphs import chain, node, problems_of
from .test_parity import standalone


def per_token_reference(moe: MixtureOfExperts, x: torch.Tensor) -> torch.Tensor:
    """The block as a reader would write it: one token at a time, only its top-k experts."""
    rows = []
    for token in x.reshape(-1, x.shape[-1]):
        probs = moe.router(token).softmax(-1).tolist()
        best = sorted(range(moe.num_experts), key=lambda i: -probs[i])[:moe.top_k]
        weights = [probs[i] for i in best]
        if moe.top_k > 1:
            weights = [w / sum(weights) for w in weights]
        rows.append(sum(w * moe.experts[i](token) for w, i in zip(weights, best, strict=True)))
    return torch.stack(rows).reshape(x.shape)


@pytest.mark.parametrize(("num_experts", "top_k", "activation"),
                         [(4, 2, "gelu"), (3, 1, "relu"), (5, 3, "silu"), (2, 2, "gelu")])
def test_the_output_is_the_per_token_top_k_mix_of_experts(
        num_experts: int, top_k: int, activation: str) -> None:
    torch.manual_seed(0)
    moe = MixtureOfExperts(8, num_experts, top_k, hidden=12, activation=activation).eval()
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(moe(x), per_token_reference(moe, x), rtol=1e-5, atol=1e-6)


def test_an_expert_a_token_did_not_choose_has_no_effect_on_it() -> None:
    torch.manual_seed(1)
    moe = MixtureOfExperts(6, 4, top_k=1).eval()
    x = torch.randn(1, 6)
    with torch.no_grad():
        chosen = int(moe.router(x).argmax())
        before = moe(x)
        for i, expert in enumerate(moe.experts):
            if i != chosen:
                expert.down.weight.mul_(100.0)
        torch.testing.assert_close(moe(x), before, rtol=0, atol=0)
        moe.experts[chosen].down.bias.add_(1.0)
        assert not torch.allclose(moe(x), before)


def test_the_load_balancing_loss_is_the_switch_formula_on_a_hand_computed_case() -> None:
    moe = MixtureOfExperts(2, 2, top_k=1).train()
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(2))
    ln3 = math.log(3)
    # Probabilities (3/4, 1/4) for three tokens and (1/4, 3/4) for one: f = (3/4, 1/4),
    # P = (5/8, 3/8), so the loss is 2 · (3/4 · 5/8 + 1/4 · 3/8) = 1.125.
    moe(torch.tensor([[[ln3, 0.0], [ln3, 0.0]], [[0.0, ln3], [ln3, 0.0]]]))
    assert moe.aux_loss is not None
    assert moe.aux_loss.item() == pytest.approx(1.125)


def test_with_top_k_the_choices_are_shared_out_and_the_kept_gates_renormalised() -> None:
    moe = MixtureOfExperts(3, 3, top_k=2, hidden=4).train()
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(3))
    x = torch.tensor([[0.0, math.log(2), math.log(3)]])  # probabilities 1/6, 2/6, 3/6
    out = moe(x)
    # f = (0, 1/2, 1/2), P = (1/6, 1/3, 1/2): 3 · (1/6 + 1/4) = 1.25
    assert moe.aux_loss is not None and moe.aux_loss.item() == pytest.approx(1.25)
    expected = 0.4 * moe.experts[1](x) + 0.6 * moe.experts[2](x)
    torch.testing.assert_close(out, expected)
    moe.eval()
    moe(x)
    assert moe.aux_loss is None


def test_the_load_balancing_loss_alone_sends_a_gradient_to_the_router() -> None:
    torch.manual_seed(2)
    moe = MixtureOfExperts(8, 4, top_k=2).train()
    moe(torch.randn(4, 7, 8))
    assert moe.aux_loss is not None
    moe.aux_loss.backward()
    assert moe.router.weight.grad is not None and moe.router.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in moe.experts.parameters())


def test_gpt2s_scheme_starts_every_experts_down_projection_as_one_residual_write() -> None:
    # Two MoE layers, each one write into the residual stream: std 0.02/√2 for every
    # expert's down projection, 0.02 for the router and the up projections.
    doc = chain([16, 64], node("moe1", "MixtureOfExperts", num_experts=3),
                node("moe2", "MixtureOfExperts", num_experts=3))
    doc["nodes"].append(node("init", "Init", scheme="gpt2"))
    model = compile_graph(doc, seed=0)
    for name, p in model.named_parameters():
        if p.dim() < 2:
            assert torch.count_nonzero(p) == 0, name
        elif name.endswith("down.weight"):
            assert p.std().item() == pytest.approx(0.02 / 2 ** 0.5, rel=0.1), name
        else:
            assert p.std().item() == pytest.approx(0.02, rel=0.1), name


def test_the_block_counts_router_and_experts_and_every_experts_flops() -> None:
    d, e, h, t = 16, 4, 24, 10
    report = inspect_graph(chain([t, d], node("moe", "MixtureOfExperts", num_experts=e,
                                              top_k=1, hidden_features=h)))
    entry = report["nodes"]["moe"]
    assert entry["params"] == d * e + e * (d * h + h + h * d + d)
    # Every expert runs on every token (the gates zero the ones not chosen): honest FLOPs.
    assert entry["flops"] == 2 * t * d * e + e * 2 * (2 * t * d * h)


def test_the_block_refuses_a_top_k_above_its_experts_and_token_ids() -> None:
    report = inspect_graph(chain([5, 8], node("moe", "MixtureOfExperts", num_experts=2,
                                              top_k=3)))
    assert problems_of(report) == [("moe", "top_k", "top_k 3 is more than the 2 experts; "
                                    "pick a top_k of 1..2")]
    report = inspect_graph(chain([5], node("moe", "MixtureOfExperts"), dtype="int64"))
    assert not report["valid"]
    assert "put an Embedding before it" in problems_of(report)[0][2]


@pytest.mark.parametrize("shape", [[6, 8], [8]])
def test_standalone_file_and_onnx_runtime_compute_what_the_compiled_block_computes(
        shape: list[int], tmp_path: Path) -> None:
    doc = chain(shape, node("ln", "LayerNorm"),
                node("moe", "MixtureOfExperts", num_experts=4, top_k=2, activation="silu"),
                node("head", "Linear", out_features=3))
    model = compile_graph(doc, seed=3).eval()
    args = example_inputs(model.meta["shipyard"].graph, batch=5, seed=11)
    with torch.no_grad():
        expected = model(*args)
    twin = standalone(model, tmp_path)
    assert "class Expert(nn.Module):" in (tmp_path / "model.py").read_text()
    with torch.no_grad():
        torch.testing.assert_close(twin(*args), expected, rtol=1e-6, atol=1e-6)
    path = export_onnx(model, tmp_path / "moe.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": args[0].numpy()})  # batch 5; exported with 2
    assert got.shape == tuple(expected.shape)
    assert float(np.max(np.abs(got - expected.numpy()))) <= 1e-5

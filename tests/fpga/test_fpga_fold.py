"""Folding the inference no-ops hls4ml trips over (nn.Identity, Dropout) keeps the model."""

from __future__ import annotations

import torch

from compute.engine import compile_graph
from fpga.hls import fold


def test_dropout_is_folded_away_and_the_outputs_stay_the_same() -> None:
    graph = {"format": "shipyard.graph/v1", "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [16]}},
        {"id": "drop", "type": "Dropout", "params": {"p": 0.5}},
        {"id": "head", "type": "Linear", "params": {"out_features": 4}},
        {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": "drop"}, {"from": "drop", "to": "head"},
                  {"from": "head", "to": "y"}]}
    model = compile_graph(graph).eval()
    x = torch.randn(5, 16)
    before = model(x)
    folded = fold(model)
    assert [n.name for n in folded.graph.nodes] == ["x", "head", "output"]
    assert torch.equal(folded(x), before)
    assert not any(isinstance(m, torch.nn.Dropout) for m in folded.modules())

"""Can a graph go to an FPGA? Per-node problems in the engine's format, before any tool runs.

`fpga_problems` names every node hls4ml's PyTorch frontend (1.3) cannot convert, with the
reason; `fpga_warnings` the nodes that convert but compute approximately there (lookup
tables). The lists come from converting each catalog block on its own (docs/fpga.md).
"""

from __future__ import annotations

from compute.engine.build import CheckedGraph
from compute.engine.errors import Problem
from compute.engine.graph import Graph

from .settings import FpgaSettings

# Blocks hls4ml's PyTorch frontend refuses, and why (in words a user can act on).
REFUSED: dict[str, str] = {
    "Embedding": "Embedding has no FPGA layer in hls4ml: feed the FPGA model numbers, not "
                 "token ids (do the lookup before it)",
    "PositionalEmbedding": "PositionalEmbedding has no FPGA layer in hls4ml",
    "MultiHeadAttention": "MultiHeadAttention is not supported by hls4ml's PyTorch frontend",
    "MixtureOfExperts": "MixtureOfExperts (its top-k routing) is not supported by hls4ml's "
                        "PyTorch frontend: use one MLP of Linear and ReLU",
    # Not converted one by one: their activations (SiLU, GELU) and the sines and cosines of
    # rotary positions have no FPGA layer, as above.
    "GatedMLP": "GatedMLP gates with SiLU or GELU, which have no FPGA layer in hls4ml: use "
                "Linear, ReLU, Linear",
    "RotaryEmbedding": "RotaryEmbedding (sines and cosines of the positions) has no FPGA "
                       "layer in hls4ml",
    "GELU": "GELU has no FPGA layer in hls4ml: use ReLU (or Sigmoid/Tanh)",
    "SiLU": "SiLU has no FPGA layer in hls4ml: use ReLU (or Sigmoid/Tanh)",
    "RMSNorm": "RMSNorm has no FPGA layer in hls4ml: use BatchNorm1d or LayerNorm",
    "AdaptiveAvgPool2d": "AdaptiveAvgPool2d has no FPGA layer in hls4ml: use AvgPool2d with "
                         "a fixed kernel size",
    "Mean": "Mean (a reduction) is not supported by hls4ml's PyTorch frontend: use a pooling "
            "block",
    "Reshape": "Reshape is not supported by hls4ml's PyTorch frontend: use Flatten",
    "Custom": "a block from My blocks (a nested graph module) is not taken by the FPGA path "
              "here: draw its blocks into the graph itself",
    "Split": "Split (a block of several outputs) is not taken by the FPGA path here: the "
             "FPGA model is a chain of one-output blocks; use one Linear per part instead",
    # The parts of attention: hls4ml 1.3 has no layer for a product of two activations, a
    # transpose, a permute or a mask, and its project for a Slice does not compile.
    "MatMul": "MatMul (a product of two activations) is not supported by hls4ml's PyTorch "
              "frontend",
    "Transpose": "Transpose is not supported by hls4ml's PyTorch frontend",
    "Permute": "Permute is not supported by hls4ml's PyTorch frontend",
    "CausalMask": "CausalMask is not supported by hls4ml's PyTorch frontend",
    "Slice": "Slice does not build with hls4ml: its project fails to compile",
}
# Blocks that convert, but compute an approximation on the FPGA.
APPROXIMATE: dict[str, str] = {
    "Softmax": "Softmax is computed with lookup tables of exp and 1/x on the FPGA: "
               "expect small differences from PyTorch, mostly in the smaller scores",
    "LayerNorm": "LayerNorm is computed with a lookup table of 1/sqrt on the FPGA: "
                 "expect differences from PyTorch",
    "Sigmoid": "Sigmoid is a lookup table on the FPGA (1024 entries): expect small "
               "differences from PyTorch",
    "Tanh": "Tanh is a lookup table on the FPGA (1024 entries): expect small differences "
            "from PyTorch",
}
# Blocks that are no-ops in inference: folded away before conversion (hls4ml rejects
# nn.Identity and loses the wiring after a Dropout).
FOLDED = ("Dropout",)


def _walk(graph: Graph, prefix: str = "") -> list[tuple[str, str, Graph | None]]:
    """(path, type, nested graph) of every node, nested ones as `repeat/node`."""
    found: list[tuple[str, str, Graph | None]] = []
    for node in graph.nodes:
        path = f"{prefix}{node.id}"
        found.append((path, node.type, node.graph))
        if node.graph is not None:
            found.extend(_walk(node.graph, f"{path}/"))
    return found


def fpga_problems(graph: CheckedGraph, settings: FpgaSettings | None = None) -> list[Problem]:
    """The nodes that keep `graph` from going to an FPGA, each with the reason (empty: it
    can go). A Repeat holding a refused node is named too. With `settings`, also the
    precision overrides that name no node of the graph."""
    problems: list[Problem] = []
    nodes = _walk(graph)
    refused_paths = {path for path, kind, _ in nodes if kind in REFUSED}
    for path, kind, _ in nodes:
        if kind in REFUSED:
            problems.append(Problem(REFUSED[kind], node=path, field="type"))
    for path, kind, body in nodes:
        if kind == "Repeat" and body is not None:
            inside = sorted(p for p in refused_paths if p.startswith(f"{path}/"))
            if inside:
                names = ", ".join(p.rsplit("/", 1)[1] for p in inside)
                problems.append(Problem(f"this Repeat holds blocks the FPGA cannot take "
                                        f"({names})", node=path, field="type"))
    for node in graph.inputs:
        dtype = getattr(node.params, "dtype", "float32")
        if dtype not in ("float32", "float64", "float16", "bfloat16"):
            problems.append(Problem(f"an FPGA model takes numbers; this Input gives {dtype}",
                                    node=node.id, field="dtype"))
    for node in graph.nodes:
        if node.type == "Scale" and node.params.by != "constant":  # type: ignore[union-attr]
            problems.append(Problem(
                "a Scale by inverse_sqrt_dim is not supported by hls4ml's PyTorch frontend: "
                "set by to constant with factor 1/√d written out", node=node.id, field="by"))
        if node.type == "LayerNorm":
            spec = next(iter(graph.analysis.nodes[node.id].outputs.values()), None)
            if spec is not None and len(spec.shape) != 2:
                problems.append(Problem(
                    "hls4ml's LayerNorm takes a sequence of vectors ([B, T, C]) only, this "
                    f"one gets {len(spec.shape) + 1} dimensions", node=node.id, field="type"))
    if len(graph.outputs) != 1:
        problems.append(Problem(f"an FPGA model has one Output here, this graph has "
                                f"{len(graph.outputs)}"))
    if settings is not None:
        kinds = {node.id: node.type for node in graph.nodes}
        for node_id in settings.precision_overrides:
            if node_id not in kinds:
                problems.append(Problem(f"precision_overrides names {node_id}, which is not a "
                                        "node of this graph", field="precision_overrides"))
            elif kinds[node_id] == "Repeat":
                problems.append(Problem(f"precision_overrides names {node_id}, a Repeat: its "
                                        "blocks take the precision of the whole model for "
                                        "now", node=node_id, field="precision_overrides"))
    return problems


def fpga_warnings(graph: CheckedGraph) -> list[Problem]:
    """The nodes that go to an FPGA approximately (lookup tables), each saying how."""
    return [Problem(APPROXIMATE[kind], node=path, field="type")
            for path, kind, _ in _walk(graph) if kind in APPROXIMATE]


__all__ = ["APPROXIMATE", "FOLDED", "REFUSED", "fpga_problems", "fpga_warnings"]

"""MixtureOfExperts: top-k routing of each token over several expert MLPs."""

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from .. import layers
from .base import (
    Block,
    Bool,
    Ctor,
    Float,
    Incoming,
    Int,
    Refusal,
    WeightInit,
    need_float,
    need_rank,
    sole,
)


class MixtureOfExpertsParams(WeightInit):
    num_experts: Annotated[Int, Field(ge=2, le=256)] = Field(
        default=4, description="Number of expert MLPs the router chooses among."
    )
    top_k: Annotated[Int, Field(ge=1)] = Field(
        default=2, description="Experts each token goes to (1..num_experts)."
    )
    hidden_features: Annotated[Int, Field(ge=1)] | None = Field(
        default=None, description="Width inside each expert; none (null): 4·D."
    )
    activation: Literal["gelu", "silu", "relu"] = Field(
        default="gelu", description="The non-linearity inside each expert."
    )
    bias: Bool = Field(default=True, description="Biases in the experts' layers.")
    aux_loss_weight: Annotated[Float, Field(ge=0, le=100)] = Field(
        default=0.01, description="Weight of the load-balancing loss added to the training "
        "loss; 0: none."
    )


class MixtureOfExperts(Block):
    type = "MixtureOfExperts"
    id_stem = "moe"
    category = "Layers"
    summary = "A router sends each token to its top-k of several MLPs and mixes their outputs."
    explanation = """
**MixtureOfExperts** (MoE) replaces one MLP with `num_experts` of them, each
`D → hidden_features → D` with an activation between, plus a **router**: a Linear
`D → num_experts` without bias that scores the experts for every token (every vector of
the last dimension, so `[B, D]` or `[B, T, D]`; the shape is unchanged).

For each token the router's scores go through a softmax, `p = softmax(x W_rᵀ)`; the
`top_k` largest are kept and the token's output is their weighted sum,
`y = Σ_{i ∈ top-k} g_i · expert_i(x)`. With `top_k > 1` the kept weights are renormalised
to sum to 1 (Mixtral's rule, the same as a softmax over the top-k scores alone); with
`top_k = 1` the gate is the chosen expert's probability itself (Switch Transformer's rule),
so the router still learns from the task loss.

Left alone, a router tends to send everything to a few experts. While training, the block
computes the Switch Transformer **load-balancing loss**
`num_experts · Σ_i f_i · P_i`, where `f_i` is the share of the token-to-expert choices
that went to expert `i` and `P_i` the router's mean probability for it: 1 when the load is
even, up to `num_experts` when one expert takes everything. The training loop adds it
times `aux_loss_weight` to the loss, and reports what it added as the metric `aux_loss`
(about `aux_loss_weight` when balanced); `train_loss` stays the task's loss alone.

Parameters: `D·num_experts` for the router (`router.weight`), plus per expert
`2·D·hidden_features` and `hidden_features + D` biases (`experts.<i>.up`,
`experts.<i>.down`). Cost: Shipyard runs **every** expert on every token and
zeroes the outputs of those not chosen, so that shapes never depend on the routing (what
ONNX and `torch.export` need): about `num_experts / top_k` times the work of a model that
computes only the chosen experts, and the FLOP count shows what really runs. The gain of
MoE at scale (more parameters for the same work per token) needs sparse kernels; here it
is for learning how routing behaves.

**What to look for:** its parameters and FLOPs grow with `num_experts`, and the FLOPs do not
fall when you lower `top_k`, since every expert runs on every token. During training, an
`aux_loss` well above `aux_loss_weight` means the router sends most tokens to a few experts.
"""
    Params = MixtureOfExpertsParams

    def construct(self, params: MixtureOfExpertsParams,
                  inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (1, 2), "D] or [B, T, D")
        if params.top_k > params.num_experts:
            raise Refusal(
                f"top_k {params.top_k} is more than the {params.num_experts} experts; "
                f"pick a top_k of 1..{params.num_experts}", "top_k")
        width = x.spec.shape[-1]
        return Ctor(
            layers.MixtureOfExperts,
            (width, params.num_experts),
            {"top_k": params.top_k, "hidden": params.hidden_features or 4 * width,
             "activation": params.activation, "bias": params.bias,
             "aux_loss_weight": params.aux_loss_weight},
        )

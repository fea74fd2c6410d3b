"""The modules behind blocks that have no exact `torch.nn` counterpart.

This file must import nothing but `torch` and `math`: `export_pytorch` copies the source
of the classes a model uses into the standalone file it writes.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def init_weights(module: nn.Module, std: float, residual_std: float | None = None,
                 residual: tuple[str, ...] = ()) -> None:
    """Start a module's weights afresh: every matrix (a parameter of two or more dimensions)
    from N(0, std²), those of the submodules named in `residual` ("" is the module itself; a
    `*` part matches any one part, as in `experts.*.down`) from N(0, residual_std²), and
    every bias at 0. Other vectors (a norm's scale) keep their value."""

    def is_residual(owner: str) -> bool:
        parts = owner.split(".")
        for name in residual:
            wanted = name.split(".")
            if len(wanted) == len(parts) and all(
                    w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
                return True
        return False

    with torch.no_grad():
        for name, p in module.named_parameters():
            owner, _, leaf = name.rpartition(".")
            if p.dim() >= 2:
                use = residual_std if residual_std is not None and is_residual(owner) else std
                nn.init.normal_(p, mean=0.0, std=use)
            elif leaf == "bias":
                nn.init.zeros_(p)


class Reshape(nn.Module):
    """Reshapes every sample, keeping the batch dimension."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Mean(nn.Module):
    """Averages over one dimension (counted with the batch), dropping it."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Add(nn.Module):
    """a + b, broadcasting as PyTorch does."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Multiply(nn.Module):
    """a * b element by element, broadcasting as PyTorch does."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Concat(nn.Module):
    """Joins a and b along one dimension (counted with the batch)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat((a, b), dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Split(nn.Module):
    """Cuts x along one dimension (counted with the batch) into parts of the given sizes,
    returned as a tuple in that order."""

    def __init__(self, sizes: tuple[int, ...], dim: int):
        super().__init__()
        self.sizes = tuple(sizes)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(x.split(self.sizes, dim=self.dim))

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dim={self.dim}"


class PositionalEmbedding(nn.Module):
    """Adds a learned vector for each position 0..T-1 to a (B, T, D) input."""

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        return x + self.weight[:t]  # (B, T, D) + (T, D)

    def extra_repr(self) -> str:
        return f"max_len={self.weight.shape[0]}, dim={self.weight.shape[1]}"


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over a (B, T, D) input.

    One fused projection makes queries, keys and values; `proj` mixes the heads back.
    Set `capture_attention = True` to keep the last attention weights, (B, heads, T, T),
    in `last_attention` (computed explicitly then, so it is slower).
    """

    residual_projections = ("proj",)  # what writes into the residual stream (GPT-2 init)

    def __init__(
        self,
        dim: int,
        num_heads: int,
        causal: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        assert dim % num_heads == 0, f"width {dim} does not split into {num_heads} heads"
        self.num_heads = num_heads
        self.causal = causal
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.capture_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, h, d // h).transpose(1, 2)  # (B, h, T, hs)
        k = k.view(b, t, h, d // h).transpose(1, 2)  # (B, h, T, hs)
        v = v.view(b, t, h, d // h).transpose(1, 2)  # (B, h, T, hs)
        p = self.dropout if self.training else 0.0
        if self.capture_attention:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)  # (B, h, T, T)
            if self.causal:
                mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            self.last_attention = weights.detach()
            y = F.dropout(weights, p, self.training) @ v  # (B, h, T, hs)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.proj(y)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, causal={self.causal}, dropout={self.dropout}"


# The parts of attention, for building it yourself.


class MatMul(nn.Module):
    """a @ b over the last two dimensions, batched over the others (as torch.matmul);
    either side can be transposed (its last two dimensions swapped) first."""

    def __init__(self, transpose_a: bool = False, transpose_b: bool = False):
        super().__init__()
        self.transpose_a = transpose_a
        self.transpose_b = transpose_b

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.transpose_a:
            a = a.transpose(-2, -1)
        if self.transpose_b:
            b = b.transpose(-2, -1)
        return a @ b  # (..., n, k) @ (..., k, m) -> (..., n, m)

    def extra_repr(self) -> str:
        return f"transpose_a={self.transpose_a}, transpose_b={self.transpose_b}"


class Transpose(nn.Module):
    """Swaps two dimensions (counted with the batch)."""

    def __init__(self, dim0: int, dim1: int):
        super().__init__()
        self.dim0 = dim0
        self.dim1 = dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)

    def extra_repr(self) -> str:
        return f"dim0={self.dim0}, dim1={self.dim1}"


class Permute(nn.Module):
    """Reorders the dimensions after the batch: `dims` lists them (1..rank) in their new
    order; the batch stays first."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Scale(nn.Module):
    """Multiplies by a constant `factor`, or, when `dim` is given, divides by √d where d is
    the size of dimension `dim` (the 1/√d of attention)."""

    def __init__(self, factor: float = 1.0, dim: int | None = None):
        super().__init__()
        self.factor = factor
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim is None:
            return x * self.factor
        return x / math.sqrt(x.shape[self.dim])

    def extra_repr(self) -> str:
        return f"factor={self.factor}" if self.dim is None else f"1/sqrt(size of dim {self.dim})"


class CausalMask(nn.Module):
    """Puts `fill` (None: -inf) above the diagonal of (..., T, T) scores, so that a softmax
    after it lets each query position see only itself and the positions before it."""

    def __init__(self, fill: float | None = None):
        super().__init__()
        self.fill = fill

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # (T, T)
        return x.masked_fill(future, float("-inf") if self.fill is None else self.fill)

    def extra_repr(self) -> str:
        return f"fill={self.fill}"


class Slice(nn.Module):
    """x[..., start:end:step, ...] along dimension `dim` (counted with the batch, ≥ 1)."""

    def __init__(self, dim: int, start: int | None, end: int | None, step: int = 1):
        super().__init__()
        self.dim = dim
        self.start = start
        self.end = end
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (slice(None),) * self.dim + (slice(self.start, self.end, self.step),)
        return x[index]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, end={self.end}, step={self.step}"


class MixtureOfExperts(nn.Module):
    """Top-k mixture of expert MLPs over the last dimension of a (B, D) or (B, T, D) input.

    A router (`router`, D -> num_experts, no bias) scores the experts for each token; the
    softmax of the scores is kept to the `top_k` best, renormalised to sum to 1 when
    top_k > 1 (Mixtral; the same as a softmax over the top-k scores alone) and left as it is
    when top_k = 1 (Switch Transformer, so that the router still learns from the task loss).
    Each expert `experts[i]` is an MLP `up` -> `act` -> `down`, D -> hidden -> D.

    Every expert runs on every token and a gate matrix, zero outside each token's top k,
    weighs their outputs: shapes never depend on the routing, so torch.export and ONNX take
    it, at the cost of num_experts MLPs per token instead of top_k.

    In training mode each forward leaves the Switch Transformer load-balancing loss in
    `aux_loss` (num_experts · Σ_i f_i · P_i: f_i the share of the token-to-expert choices
    that went to expert i, P_i its mean router probability; 1 when balanced), for the
    training loop to add times `aux_loss_weight`; in eval mode `aux_loss` is None.
    """

    # The projections that write back into the residual stream (GPT-2's init): the experts'
    # down projections, one write into the stream together.
    residual_projections = ("experts.*.down",)

    class Expert(nn.Module):
        """One expert: D -> hidden -> D (nested, so the exported file gets it with its owner)."""

        def __init__(self, dim: int, hidden: int, activation: str, bias: bool):
            super().__init__()
            self.up = nn.Linear(dim, hidden, bias=bias)
            self.act = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}[activation]()
            self.down = nn.Linear(hidden, dim, bias=bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.down(self.act(self.up(x)))

    def __init__(
        self,
        dim: int,
        num_experts: int,
        top_k: int = 2,
        hidden: int | None = None,
        activation: str = "gelu",
        bias: bool = True,
        aux_loss_weight: float = 0.01,
    ):
        super().__init__()
        assert num_experts >= 2, f"a mixture needs at least 2 experts, got {num_experts}"
        assert 1 <= top_k <= num_experts, f"top_k {top_k} is not in 1..{num_experts}"
        hidden = hidden or 4 * dim
        self.num_experts = num_experts
        self.top_k = top_k
        self.aux_loss_weight = aux_loss_weight
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList(
            self.Expert(dim, hidden, activation, bias) for _ in range(num_experts))
        self.aux_loss: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = self.router(x).float().softmax(dim=-1)  # (..., E)
        top, index = probs.topk(self.top_k, dim=-1)  # (..., k)
        if self.top_k > 1:
            top = top / top.sum(dim=-1, keepdim=True)
        gates = torch.zeros_like(probs).scatter(-1, index, top).to(x.dtype)  # (..., E)
        out = torch.zeros_like(x)
        for i, expert in enumerate(self.experts):
            out = out + gates[..., i:i + 1] * expert(x)  # (..., D)
        if self.training:
            chosen = torch.zeros_like(probs).scatter(-1, index, 1.0)  # (..., E), k ones a row
            share = chosen.reshape(-1, self.num_experts).mean(0) / self.top_k  # f, sums to 1
            mean_prob = probs.reshape(-1, self.num_experts).mean(0)  # P
            self.aux_loss = self.num_experts * (share * mean_prob).sum()
        else:
            self.aux_loss = None
        return out

    def extra_repr(self) -> str:
        return (f"num_experts={self.num_experts}, top_k={self.top_k}, "
                f"aux_loss_weight={self.aux_loss_weight}")

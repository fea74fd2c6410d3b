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

    residual_projections: tuple[str, ...] = ()

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        return x + self.weight[:t]  # (B, T, D) + (T, D)

    def extra_repr(self) -> str:
        return f"max_len={self.weight.shape[0]}, dim={self.weight.shape[1]}"


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) on a (B, T, D) input split into `num_heads` heads.

    No weights: each head's vector at position t is turned by angles t·θ^(−2i/hs), feature i
    paired with feature i + hs/2 (the "rotate half" layout of Llama's code in Hugging Face
    and of GPT-NeoX, not the interleaved pairs (2i, 2i+1) of the RoFormer paper).
    `MultiHeadAttention` with position "rope" applies `rotate` to its queries and keys.
    """

    def __init__(self, num_heads: int, theta: float = 10000.0):
        super().__init__()
        self.num_heads = num_heads
        self.theta = theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.num_heads
        x = x.view(b, t, h, d // h).transpose(1, 2)  # (B, h, T, hs)
        return self.rotate(x, self.theta).transpose(1, 2).reshape(b, t, d)

    @staticmethod
    def rotate(x: torch.Tensor, theta: float) -> torch.Tensor:
        """RoPE on (..., T, hs): position t along the second-to-last dimension."""
        t, hs = x.shape[-2], x.shape[-1]
        steps = torch.arange(0, hs, 2, dtype=torch.float32, device=x.device) / hs
        inv_freq = 1.0 / (theta**steps)  # (hs/2,)
        angles = torch.arange(t, dtype=torch.float32, device=x.device)[:, None] * inv_freq
        angles = torch.cat((angles, angles), dim=-1)  # (T, hs)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        half = torch.cat((-x[..., hs // 2 :], x[..., : hs // 2]), dim=-1)  # (x1, x2) -> (-x2, x1)
        return x * cos + half * sin

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, theta={self.theta}"


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over a (B, T, D) input.

    One fused projection makes queries (D), keys and values (num_kv_heads·hs each); `proj`
    mixes the heads back. With fewer key/value heads than query heads (grouped-query
    attention; 1: multi-query), query heads g·i .. g·i + g − 1 share key/value head i.
    `position` adds where tokens are: "rope" rotates queries and keys (`RotaryEmbedding`),
    "alibi" adds −m_h·|i − j| to the scores of head h. `window` lets position i see only
    positions j with |i − j| < window (with `causal`, the `window` positions ending at i).
    Set `capture_attention = True` to keep the last attention weights, (B, heads, T, T),
    in `last_attention` (computed explicitly then, so it is slower).
    """

    residual_projections: tuple[str, ...] = ("proj",)
    slopes: torch.Tensor  # ALiBi's, (heads,): a buffer outside the state dict

    def __init__(
        self,
        dim: int,
        num_heads: int,
        causal: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        num_kv_heads: int | None = None,
        position: str = "none",
        rope_theta: float = 10000.0,
        window: int | None = None,
    ):
        super().__init__()
        kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        assert dim % num_heads == 0, f"width {dim} does not split into {num_heads} heads"
        assert num_heads % kv_heads == 0, f"{kv_heads} key/value heads do not divide {num_heads}"
        assert position in ("none", "rope", "alibi"), f"unknown position {position!r}"
        self.num_heads = num_heads
        self.num_kv_heads = kv_heads
        self.causal = causal
        self.dropout = dropout
        self.position = position
        self.rope_theta = rope_theta
        self.window = window
        kv_width = kv_heads * (dim // num_heads)
        self.qkv = nn.Linear(dim, dim + 2 * kv_width, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        if position == "alibi":
            self.register_buffer("slopes", torch.tensor(self.alibi_slopes(num_heads)),
                                 persistent=False)
        self.capture_attention = False
        self.last_attention: torch.Tensor | None = None

    @staticmethod
    def alibi_slopes(n: int) -> list[float]:
        """ALiBi's head slopes: for n a power of 2, 2^(−8/n), 2^(−16/n), ..., 2^(−8); else
        those of the power of 2 below n, then every other slope of the power of 2 above."""

        def powers(m: int) -> list[float]:
            return [2.0 ** (-8.0 * (i + 1) / m) for i in range(m)]

        below = 2 ** math.floor(math.log2(n))
        return powers(below) + powers(2 * below)[0::2][: n - below]

    def attention_bias(self, t: int, device: torch.device,
                       dtype: torch.dtype) -> torch.Tensor | None:
        """What is added to the scores, (h or 1, T, T): −inf where a key is out of sight,
        ALiBi's distance penalty; None when nothing is."""
        if self.position != "alibi" and self.window is None and not self.causal:
            return None
        pos = torch.arange(t, device=device)
        distance = pos[:, None] - pos[None, :]  # (T, T): query i minus key j
        visible = torch.ones(t, t, dtype=torch.bool, device=device)
        if self.causal:
            visible = visible & (distance >= 0)
        if self.window is not None:
            visible = visible & (distance.abs() < self.window)
        bias = torch.zeros(t, t, dtype=dtype, device=device)
        bias = bias.masked_fill(~visible, float("-inf"))[None]  # (1, T, T)
        if self.position == "alibi":
            slopes = self.slopes.to(dtype)[:, None, None]  # (h, 1, 1)
            bias = bias - slopes * distance.abs().to(dtype)  # (h, T, T)
        return bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h, kvh = self.num_heads, self.num_kv_heads
        hs = d // h
        q, k, v = self.qkv(x).split([d, kvh * hs, kvh * hs], dim=2)
        q = q.view(b, t, h, hs).transpose(1, 2)  # (B, h, T, hs)
        k = k.view(b, t, kvh, hs).transpose(1, 2)  # (B, kvh, T, hs)
        v = v.view(b, t, kvh, hs).transpose(1, 2)  # (B, kvh, T, hs)
        if self.position == "rope":
            q = RotaryEmbedding.rotate(q, self.rope_theta)
            k = RotaryEmbedding.rotate(k, self.rope_theta)
        if kvh != h:  # each key/value head serves h // kvh query heads in a row
            k = k[:, :, None].expand(b, kvh, h // kvh, t, hs).reshape(b, h, t, hs)
            v = v[:, :, None].expand(b, kvh, h // kvh, t, hs).reshape(b, h, t, hs)
        p = self.dropout if self.training else 0.0
        if self.capture_attention:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, h, T, T)
            bias = self.attention_bias(t, x.device, scores.dtype)
            if bias is not None:
                scores = scores + bias
            weights = scores.softmax(dim=-1)
            self.last_attention = weights.detach()
            y = F.dropout(weights, p, self.training) @ v  # (B, h, T, hs)
        elif self.causal and self.window is None and self.position != "alibi":
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:  # the mask or bias as a tensor (None: attention to every position)
            bias = self.attention_bias(t, x.device, q.dtype)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.proj(y)

    def extra_repr(self) -> str:
        text = f"num_heads={self.num_heads}, causal={self.causal}, dropout={self.dropout}"
        if self.num_kv_heads != self.num_heads:
            text += f", num_kv_heads={self.num_kv_heads}"
        if self.position != "none":
            text += f", position={self.position!r}"
        if self.position == "rope":
            text += f", rope_theta={self.rope_theta}"
        if self.window is not None:
            text += f", window={self.window}"
        return text


class GatedMLP(nn.Module):
    """The gated MLP of Llama-style transformers: down(act(gate(x)) * up(x)).

    `activation` "silu" makes it SwiGLU, "gelu" (exact, erf-based) GeGLU.
    """

    residual_projections: tuple[str, ...] = ("down",)

    def __init__(self, dim: int, hidden: int, activation: str = "silu", bias: bool = False):
        super().__init__()
        assert activation in ("silu", "gelu"), f"unknown activation {activation!r}"
        self.activation = activation
        self.gate = nn.Linear(dim, hidden, bias=bias)
        self.up = nn.Linear(dim, hidden, bias=bias)
        self.down = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate(x)  # (..., hidden)
        gate = F.silu(gate) if self.activation == "silu" else F.gelu(gate)
        return self.down(gate * self.up(x))  # (..., D)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


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

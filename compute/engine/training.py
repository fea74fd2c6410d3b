"""The training loop: one loop for the command line (`shipyard train`, in compute/cli.py)
and the workers.

Map of this file: `TrainConfig`; the `Reporter` contract; the pieces of a step (batches,
loss, auxiliary losses, optimizer, evaluation, attention capture, text samples);
checkpoints; `train` (a module and a `Dataset`) and `train_graph` (a graph and a dataset
name: what a worker and the command line call).

Model-agnostic, in the style of minGPT's trainer: it takes a compiled module and a
`Dataset`, reports through a `Reporter` (metrics, attention maps, text samples,
checkpoints) and asks it before every step whether to stop. Batches are drawn from a
generator seeded by (seed, step), and checkpoints keep the model, the optimizer and the
random state, so a run resumed from a checkpoint continues as if it had not stopped (on the
CPU, bit for bit). Checkpoints are safetensors files: never pickle. No Django here.
With `gpus` > 1 the same loop runs in one process per device (compute/engine/distributed.py).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from .blocks.activation import attention_shaped
from .blocks.base import Float
from .datasets import IGNORE, Dataset, Task
from .distributed import Ranks, train_distributed
from .layers import MixtureOfExperts, MultiHeadAttention
from .reporting import Reporter, SilentReporter
from .settings import RunSettings, basic, derived, refuse, with_limits

MAX_MAP = 64  # attention maps are pooled down to at most this many rows and columns
# Steps in a row whose loss is NaN or infinite before a run gives up: one bad batch may
# be a fluke, three in a row is a diverged run (its weights are NaN by then, as a rule).
NONFINITE_STEPS = 3
CHECKPOINT_GLOB = "step-*.safetensors"


# The most steps a run may take here; a server lowers it (SHIPYARD_MAX_STEPS) for `steps`
# and the settings counted in steps (`TrainConfig.STEP_COUNTS`).
MAX_STEPS = 1_000_000_000
MAX_ATTENTION_SNAPSHOTS = 64  # per attention module and run
MAX_GPUS = 64  # devices one run may ask for (a worker has fewer; submission checks)


def _min_lr(given: dict[str, Any]) -> float:
    return float(f"{given['lr'] / 10:.12g}")  # 3e-4, not 0.00030000000000000003


def _attention_interval(given: dict[str, Any]) -> int:
    # Every evaluation, or every k-th, so that the run keeps at most 64 snapshots.
    steps, every = given["steps"], given["eval_interval"]
    return every * max(1, -(-steps // (MAX_ATTENTION_SNAPSHOTS * every)))


class TrainConfig(RunSettings):
    """How to train. The defaults learn on every starter with its dataset in a few hundred
    steps on a CPU (mlp and cnn on digits in seconds, char_gpt on shakespeare in minutes).

    The ranges are far wider than a run needs, and narrow enough that no value reaches
    PyTorch as a size or a seed it cannot take (a batch of 2**70 samples) or as a number
    that is not one (1e999 reads as inf)."""

    kind: ClassVar[str] = "train"
    title: ClassVar[str] = "Training"
    summary: ClassVar[str] = ("Train the graph on a dataset: metrics, attention maps and "
                              "text samples as it learns; the weights and exports at the end.")
    # Settings counted in steps: at most the most steps a run may take.
    STEP_COUNTS: ClassVar[tuple[str, ...]] = (
        "steps", "warmup_steps", "eval_interval", "log_interval", "attention_interval",
        "checkpoint_interval")

    steps: int = Field(
        default=300, ge=1, le=MAX_STEPS, title="Steps", json_schema_extra=basic(),
        description="Optimizer steps in all (a resumed run counts the steps before too).")
    batch_size: int = Field(default=64, ge=1, le=4096, title="Batch size",
                            json_schema_extra=basic(), description="Samples per step.")
    lr: Float = Field(default=3e-3, gt=0, le=100, title="Learning rate",
                      json_schema_extra=basic(),
                      description="Peak learning rate, reached at the end of the warmup.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", title="Device", json_schema_extra=basic(),
        description="auto: cuda when there is one. Also picks the run's queue.")
    optimizer: Literal["adamw", "sgd"] = Field(
        default="adamw", title="Optimizer", description="sgd is with momentum 0.9.")
    beta1: Float = Field(default=0.9, ge=0, lt=1, title="Adam β1",
                         description="AdamW's decay of its running mean of the gradient. "
                         "sgd ignores it.")
    beta2: Float = Field(default=0.95, ge=0, lt=1, title="Adam β2",
                         description="AdamW's decay of its running mean of the squared "
                         "gradient; nanoGPT's small-model recipes use 0.99. sgd ignores it.")
    min_lr: Float = Field(default_factory=_min_lr, ge=0, le=100, title="Min learning rate",
                          json_schema_extra=derived("lr / 10"),
                          description="Where the cosine decay ends, at the last step. "
                          "Default: a tenth of the learning rate. At most lr.")
    warmup_steps: int = Field(default=20, ge=0, le=MAX_STEPS, title="Warmup steps",
                              description="Linear warmup from lr / warmup_steps.")
    weight_decay: Float = Field(default=0.01, ge=0, le=10, title="Weight decay",
                                description="On weight matrices only, not biases, norms or "
                                "gains.")
    grad_clip: Float | None = Field(default=1.0, gt=0, le=1e6, title="Gradient clip",
                                    description="Largest global gradient norm; none (null): "
                                    "no clipping.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, title="Seed",
                      description="Batches, dropout, text samples, the random datasets and "
                      "splits, and (train_graph) the initial weights.")
    eval_interval: int = Field(default=50, ge=1, le=MAX_STEPS, title="Eval interval",
                               description="Steps between evaluations (and text samples).")
    eval_batches: int = Field(default=4, ge=1, le=1000, title="Eval batches",
                              description="Validation batches per evaluation (the same ones "
                              "every time).")
    log_interval: int = Field(default=10, ge=1, le=MAX_STEPS, title="Log interval",
                              description="Steps between train metrics (the loss averaged "
                              "over them).")
    attention_interval: int = Field(
        default_factory=_attention_interval, ge=0, le=MAX_STEPS, title="Attention interval",
        json_schema_extra=derived("auto"),
        description="Steps between attention snapshots; 0: none. Default: every evaluation, "
        f"or every k-th, so that a run keeps at most {MAX_ATTENTION_SNAPSHOTS} per module.")
    checkpoint_interval: int = Field(
        default_factory=lambda given: given["eval_interval"], ge=0, le=MAX_STEPS,
        title="Checkpoint interval", json_schema_extra=derived("eval interval"),
        description="Steps between checkpoints; 0: only the last one. Default: the eval "
        "interval.")
    sample_length: int = Field(default=100, ge=0, le=10_000, title="Sample length",
                               description="Characters a text model writes at each "
                               "evaluation; 0: none.")
    sample_temperature: Float = Field(default=0.8, ge=0, le=100, title="Sample temperature",
                                      description="0: greedy (the likeliest character every "
                                      "time).")
    bf16: bool = Field(default=False, title="bfloat16 autocast (CUDA)",
                       description="bfloat16 autocast; on CUDA only, ignored on the CPU.")
    compile: bool = Field(default=False, title="torch.compile",
                          description="torch.compile the model for the training steps.")
    gpus: int = Field(default=1, ge=1, le=MAX_GPUS, title="GPUs",
                      description="Devices that train together (data parallel, one process "
                      "each): the batch is split evenly between them. On the CPU: that many "
                      "processes. At most what the worker has.")

    @model_validator(mode="after")
    def _rules(self) -> TrainConfig:
        if self.batch_size % self.gpus:
            raise refuse("batch_size", (
                f"{self.batch_size} does not split evenly across {self.gpus} GPUs (gpus): "
                f"give a multiple of {self.gpus}, such as "
                f"{max(self.gpus, self.batch_size - self.batch_size % self.gpus)}"))
        if self.min_lr > self.lr:
            raise refuse("min_lr", f"must be at most lr ({self.lr:g}), got {self.min_lr:g}")
        if self.attention_interval and (self.steps / self.attention_interval
                                        > MAX_ATTENTION_SNAPSHOTS):
            raise refuse("attention_interval", (
                f"{self.attention_interval} would keep {self.steps // self.attention_interval} "
                f"attention snapshots; the most is {MAX_ATTENTION_SNAPSHOTS} (raise it to at "
                f"least {-(-self.steps // MAX_ATTENTION_SNAPSHOTS)})"))
        return self

    @classmethod
    def capped(cls, max_steps: int) -> type[TrainConfig]:
        """These settings with at most `max_steps` steps (and intervals)."""
        return with_limits(cls, dict.fromkeys(cls.STEP_COUNTS, max_steps))

    def lr_at(self, step: int) -> float:
        """Linear warmup to `lr`, then cosine decay to `min_lr` at the last step."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - 1 - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress))


class LossNotFinite(ValueError):
    """The loss was NaN or infinite for NONFINITE_STEPS steps in a row."""

    def __init__(self, step: int, value: float) -> None:
        what = "NaN" if math.isnan(value) else "infinite"
        super().__init__(f"the loss became {what} at step {step}: lower the learning rate "
                         "or clip gradients")
        self.step, self.value = step, value

    def __reduce__(self) -> tuple[type, tuple[int, float]]:  # from a training process
        return LossNotFinite, (self.step, self.value)


class _Divergence:
    """Counts non-finite losses in a row on the loss's own device, so that watching for a
    diverged run costs no device sync a step; `check` reads it where the loop reads the loss
    anyway (each log interval)."""

    def __init__(self, device: torch.device | str) -> None:
        def zero(dtype: torch.dtype) -> torch.Tensor:
            return torch.zeros((), dtype=dtype, device=device)

        self.run = zero(torch.long)  # non-finite steps in a row, up to this one
        self.began, self.began_value = zero(torch.long), zero(torch.float32)  # the row's first
        self.step, self.value = zero(torch.long), zero(torch.float32)  # the first long row's

    def update(self, step: int, loss: torch.Tensor) -> None:
        loss = loss.detach().float()
        bad = ~torch.isfinite(loss)
        first_of_row = bad & (self.run == 0)
        self.began = torch.where(first_of_row, step, self.began)
        self.began_value = torch.where(first_of_row, loss, self.began_value)
        self.run = torch.where(bad, self.run + 1, 0)
        caught = (self.step == 0) & (self.run >= NONFINITE_STEPS)
        self.step = torch.where(caught, self.began, self.step)
        self.value = torch.where(caught, self.began_value, self.value)

    def check(self) -> None:
        step = int(self.step.item())
        if step:
            raise LossNotFinite(step, float(self.value.item()))


@dataclass
class TrainResult:
    steps: int  # steps done, counting those before a resume
    stopped: bool  # stopped early because the reporter asked
    seconds: float  # wall time of this call
    metrics: dict[str, float] = field(default_factory=dict)  # the last value of each
    checkpoint: Path | None = None  # the last checkpoint written
    weights: Path | None = None  # train_graph: the final weights


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but CUDA is not available here")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def loss_of(task: Task, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classes and tokens (IGNORE targets ask nothing), MSE for values."""
    if task == "regression":
        return F.mse_loss(scores.float(), y)
    if task == "next_token":
        return F.cross_entropy(scores.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE)
    return F.cross_entropy(scores.float(), y)


def _batch(x: torch.Tensor, y: torch.Tensor, size: int, seed: int, step: int,
           part: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
    # A generator per (seed, step): the batch of step s is the same in a resumed run, and
    # on any number of devices (`part`: this device's share of it).
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    index = torch.randint(0, len(x), (size,), generator=gen)[part].to(x.device)
    return x[index], y[index]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Weight decay on matrices (Linear, Conv, Embedding) only, as nanoGPT does.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2],
               "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def freeze(model: nn.Module, frozen: Collection[str]) -> list[nn.Parameter]:
    """Switch off the gradient of the parameters named in `frozen` (state-dict names; a
    tied weight is frozen by any of its names) and return them, to switch back on after.
    A frozen parameter is left out of the optimizer too (`make_optimizer` takes only those
    that need a gradient), so no step, momentum or weight decay ever touches it.

    Raises ValueError for a name that is not one of the model's parameters (a buffer,
    such as a BatchNorm's running mean, is not trained and cannot be frozen)."""
    if not frozen:
        return []
    params = dict(model.named_parameters(remove_duplicate=False))
    unknown = sorted(set(frozen) - params.keys())
    if unknown:
        buffers = {name for name, _ in model.named_buffers()}
        what = ("a buffer (not trained), not a parameter" if unknown[0] in buffers
                else "not a parameter of this model")
        known = ", ".join(list(params)[:5]) + (", ..." if len(params) > 5 else "")
        raise ValueError(f"cannot freeze {unknown[0]!r}: it is {what}"
                         + (f" ({len(unknown) - 1} more such names)" if len(unknown) > 1
                            else "") + f"; its parameters are {known}")
    chosen: dict[int, nn.Parameter] = {}
    for name in frozen:
        chosen[id(params[name])] = params[name]
    if all(id(p) in chosen for p in params.values()):
        raise ValueError("every parameter is frozen: there is nothing to train (unfreeze "
                         "some, or evaluate instead)")
    switched = [p for p in chosen.values() if p.requires_grad]
    for p in switched:
        p.requires_grad_(False)
    return switched


def _autocast(device: torch.device, config: TrainConfig) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=config.bf16 and device.type == "cuda")


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, config: TrainConfig,
             device: torch.device | None = None) -> dict[str, float]:
    """Loss (and accuracy, for classes and tokens) on a fixed part of the validation set:
    all of it when it is at most `eval_batches` batches, else the same random sample
    every time, so that the values of one run compare across steps."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    n = min(len(data.x_val), config.eval_batches * config.batch_size)
    order = torch.randperm(len(data.x_val), generator=torch.Generator().manual_seed(0))[:n]
    loss_sum, weight, correct, counted = 0.0, 0, 0, 0
    for chunk in order.split(config.batch_size):
        x, y = data.x_val[chunk].to(device), data.y_val[chunk].to(device)
        with _autocast(device, config):
            scores = model(x)
        loss_sum += loss_of(data.info.task, scores, y).item() * len(chunk)
        weight += len(chunk)
        if data.info.task != "regression":
            asked = y != IGNORE
            correct += int(((scores.argmax(-1) == y) & asked).sum())
            counted += int(asked.sum())
    model.train(was_training)
    metrics = {"val_loss": loss_sum / weight}
    if counted:
        metrics["val_accuracy"] = correct / counted
    return metrics


def aux_loss_modules(model: nn.Module) -> list[MixtureOfExperts]:
    """The modules that leave an auxiliary loss in `aux_loss` on each training forward (a
    MixtureOfExperts' load-balancing loss) with a weight that is not 0 (each Repeat copy
    on its own)."""
    return [m for m in model.modules()
            if isinstance(m, MixtureOfExperts) and m.aux_loss_weight]


def aux_loss_of(modules: list[MixtureOfExperts]) -> torch.Tensor | None:
    """Σ weight · aux_loss over the modules that ran (None when none left one): what the
    loop adds to the task's loss, and reports as `aux_loss`."""
    terms = [m.aux_loss_weight * m.aux_loss.float() for m in modules
             if m.aux_loss is not None]
    return torch.stack(terms).sum() if terms else None


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every module that may have attention maps to show, by its path (`blocks.0.attn`:
    each Repeat copy on its own): the MultiHeadAttention blocks', and the Softmax blocks',
    which show theirs only when their output has the shape of attention weights."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, MultiHeadAttention | nn.Softmax)}


def pool_map(weights: torch.Tensor, size: int = MAX_MAP) -> torch.Tensor:
    """(heads, T, T) → at most (heads, size, size): averaged over blocks of queries and
    keys, then rows scaled to sum to 1 again. Zeros above a causal diagonal stay zero
    outside the blocks that cross it."""
    if weights.shape[-1] <= size and weights.shape[-2] <= size:
        return weights
    pooled = F.adaptive_avg_pool2d(weights, (min(size, weights.shape[-2]),
                                             min(size, weights.shape[-1])))
    return pooled / pooled.sum(-1, keepdim=True).clamp_min(1e-12)


def example_tokens(data: Dataset) -> list[str] | None:
    """The fixed example's tokens as labels, one per position: a text's characters, other
    token inputs' ids ("11"); None for inputs that are not a sequence of token ids."""
    example = data.x_val[0]
    if example.dim() != 1 or example.dtype.is_floating_point:
        return None
    ids = [int(i) for i in example.tolist()]
    if data.text and data.decode is not None:
        return [data.decode([i]) for i in ids]
    return [str(i) for i in ids]


def tokens_fit(tokens: list[str] | None, maps: torch.Tensor) -> list[str] | None:
    """`tokens` when a (heads, rows, cols) map is over the example's positions (square, and
    as many rows as positions, or 64 pooled from more); else None."""
    if tokens is None or maps.shape[-1] != maps.shape[-2]:
        return None
    return tokens if maps.shape[-1] == min(len(tokens), MAX_MAP) else None


@torch.no_grad()
def capture_attention(model: nn.Module, example: torch.Tensor, *, pool: bool = True
                      ) -> dict[str, torch.Tensor]:
    """Per-head attention weights on one example: {module path: (heads, t, t)}, t ≤ 64
    (`pool=False`: T, the sequence's full length, unpooled).
    Capture is switched on for this one forward pass only, in eval mode: a
    MultiHeadAttention keeps its weights when asked (`capture_attention`); a Softmax block's
    output is read by a forward hook, which exists only during this pass, and kept when it
    is attention-shaped ([T, T] or [h, T, T] per sample, over the last dimension; one head
    for [T, T])."""
    modules = attention_modules(model)
    if not modules:
        return {}
    kept: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> Any:
        def keep(module: nn.Softmax, args: Any, out: torch.Tensor) -> None:
            if attention_shaped(tuple(out.shape[1:]), module.dim):  # type: ignore[arg-type]
                kept[name] = out[0] if out.dim() == 4 else out[:1]  # (heads, T, T)
        return keep

    was_training = model.training
    model.eval()
    hooks = []
    for name, m in modules.items():
        if isinstance(m, MultiHeadAttention):
            m.capture_attention = True
        else:
            hooks.append(m.register_forward_hook(keeper(name)))
    try:
        model(example[:1])
        for name, m in modules.items():
            if isinstance(m, MultiHeadAttention) and m.last_attention is not None:
                kept[name] = m.last_attention[0]
        # In the modules' order; one that kept nothing was not on the path taken, or is a
        # Softmax that is not attention.
        maps = {name: (pool_map(kept[name].float()) if pool else kept[name].float()).cpu()
                for name in modules if name in kept}
    finally:
        for hook in hooks:
            hook.remove()
        for m in modules.values():
            if isinstance(m, MultiHeadAttention):
                m.capture_attention = False
                m.last_attention = None
        model.train(was_training)
    return maps


@torch.no_grad()
def generate_text(model: nn.Module, data: Dataset, length: int, *, seed: int = 0,
                  temperature: float = 0.8) -> str:
    """Continue the first validation window one character at a time; the model always
    reads the last T characters (T: its Input). Temperature 0 picks the likeliest."""
    assert data.text and data.decode is not None, "only text datasets"
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    context = data.x_val[0].tolist()
    window = len(context)
    gen = torch.Generator().manual_seed(seed)
    out: list[int] = []
    for _ in range(length):
        x = torch.tensor([context[-window:]], device=device)
        logits = model(x)[0, -1].float().cpu()  # (vocab,)
        if temperature == 0:
            token = int(logits.argmax())
        else:
            token = int(torch.multinomial((logits / temperature).softmax(-1), 1, generator=gen))
        context.append(token)
        out.append(token)
    model.train(was_training)
    return data.decode(out)


# Checkpoints: safetensors only. Tensors: `model.<state key>`, `optim.<param index>.<slot>`,
# `rng.cpu`, `rng.cuda.<device>`; metadata: step, the config, the optimizer's param groups.


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, config: TrainConfig) -> Path:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in unshared(model.state_dict()).items()}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if value is not None:
                tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous().cpu()
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = rng
    meta = {"format": "shipyard.checkpoint/v1", "step": str(step),
            "config": config.model_dump_json(),
            "param_groups": json.dumps(state["param_groups"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=meta)
    partial.replace(path)  # a crash mid-write leaves no half checkpoint under the real name
    return path


def load_checkpoint(path: Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> int:
    """Restore the model, the optimizer and the random state; returns the steps done."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from None
    if meta.get("format") != "shipyard.checkpoint/v1":
        raise ValueError(f"{path} is not a Shipyard checkpoint")
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, extra = model.state_dict().keys() - weights.keys(), weights.keys() - (
        model.state_dict().keys())
    if missing or extra:
        raise ValueError(f"checkpoint {path} is of another model (it lacks "
                         f"{sorted(missing)[:3]}, has {sorted(extra)[:3]} besides)")
    model.load_state_dict(weights)
    if optimizer is not None:
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": slots,
                                   "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng.cpu"])
    if torch.cuda.is_available():
        states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())
                  if f"rng.cuda.{i}" in tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    return int(meta["step"])


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the most steps in `folder`, if any."""
    found = sorted(Path(folder).glob(CHECKPOINT_GLOB))
    return found[-1] if found else None


def train(model: nn.Module, data: Dataset, config: TrainConfig,
          reporter: Reporter | None = None, *, checkpoint_dir: Path | None = None,
          resume_from: Path | None = None, frozen: Collection[str] = ()) -> TrainResult:
    """Train `model` in place on `data` (see the module doc for the guarantees).

    Checkpoints go to `checkpoint_dir` (none when it is None) every `checkpoint_interval`
    steps, at the last step and when stopped early; `resume_from` continues a run.
    `frozen` names parameters (state-dict names) that keep their values bit for bit: they
    get no gradient and are left out of the optimizer (see `freeze`); ValueError for a name
    that is not a parameter. They need a gradient again when the call returns."""
    reporter = reporter or SilentReporter()
    device = pick_device(config.device)
    switched = freeze(model, frozen)
    try:
        if config.gpus > 1:  # `model` gets the weights rank 0 ends with, on its own device
            return train_distributed(_train, save_weights, model, data, config, reporter,
                                     device, checkpoint_dir, resume_from)
        return _train(model, data, config, reporter, device, checkpoint_dir, resume_from)
    finally:
        for p in switched:
            p.requires_grad_(True)


def _train(model: nn.Module, data: Dataset, config: TrainConfig, reporter: Reporter,
           device: torch.device, checkpoint_dir: Path | None, resume_from: Path | None,
           ranks: Ranks | None = None) -> TrainResult:
    """The loop, in one process or (`ranks`) in each process of a data-parallel run: every
    rank takes its share of the batch a single process would draw, DDP averages the
    gradients, and rank 0 alone reports, evaluates and writes checkpoints (of `model`, the
    unwrapped module: they resume on any number of devices)."""
    model.to(device).train()
    torch.manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    start = load_checkpoint(resume_from, model, optimizer) if resume_from else 0
    lead = ranks is None or ranks.rank == 0
    part = slice(None) if ranks is None else ranks.share(config.batch_size)
    wrapped: nn.Module = model
    if ranks is not None:
        if ranks.rank:  # dropout: another stream than rank 0's, the same on a resume
            torch.manual_seed(config.seed * 1_000_003 + start * 64 + ranks.rank)
        # static_graph: a parameter the graph never uses (a branch off the output's path)
        # is found once, not every step.
        wrapped = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            static_graph=True)
    runner: Any = torch.compile(wrapped) if config.compile else wrapped
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    task = data.info.task
    unit, per_sample = ("samples_per_s", 1)
    if task == "next_token":
        unit, per_sample = "tokens_per_s", data.y_train[0].numel()
    example = data.x_val[:1].to(device)  # the fixed example for attention maps
    tokens = example_tokens(data)  # its labels, on the maps' axes
    last: dict[str, float] = {}
    began = time.perf_counter()
    step, stopped, checkpoint = start, False, None
    window_losses: list[torch.Tensor] = []
    window_aux: list[torch.Tensor] = []
    aux_modules = aux_loss_modules(model)
    window_start, window_steps = time.perf_counter(), 0
    divergence = _Divergence(device)

    def report(name: str, value: float) -> None:
        last[name] = value
        reporter.on_metric(step, name, value)

    def save() -> Path | None:
        if checkpoint_dir is None:
            return None
        path = save_checkpoint(Path(checkpoint_dir) / f"step-{step:06d}.safetensors", model,
                               optimizer, step, config)
        reporter.on_checkpoint(step, path)
        return path

    while step < config.steps:
        stop = reporter.should_stop() if lead else False
        if (ranks.agree(stop) if ranks is not None else stop):
            stopped = True
            break
        lr = config.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = _batch(x_train, y_train, config.batch_size, config.seed, step, part)
        for m in aux_modules:
            m.aux_loss = None  # a module off the path taken must not add last step's
        with _autocast(device, config):
            scores = runner(x)
        loss = loss_of(task, scores, y)  # the task's loss: train_loss, comparable across models
        aux = aux_loss_of(aux_modules)
        optimizer.zero_grad(set_to_none=True)
        (loss if aux is None else loss + aux).backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
        optimizer.step()
        step += 1
        window_losses.append(loss.detach())
        if aux is not None:
            window_aux.append(aux.detach())
        window_steps += 1
        divergence.update(step, loss if aux is None else loss + aux.detach())
        last_step = step == config.steps
        if step % config.log_interval == 0 or last_step:
            elapsed = max(time.perf_counter() - window_start, 1e-9)
            mean_loss = torch.stack(window_losses).mean()
            mean_aux = torch.stack(window_aux).mean() if window_aux else None
            if ranks is not None:  # the whole batch's, as one process would have it
                mean_loss = ranks.mean(mean_loss)
                mean_aux = None if mean_aux is None else ranks.mean(mean_aux)
            if mean_aux is not None:  # first, so that a reporter printing at train_loss has it
                report("aux_loss", mean_aux.item())
            report("train_loss", mean_loss.item())
            divergence.check()  # after the point, which shows the NaN flagged
            report("lr", lr)
            report("grad_norm", float(norm))
            report(unit, window_steps * config.batch_size * per_sample / elapsed)
            window_losses.clear()
            window_aux.clear()
        if not lead:
            continue
        if step % config.eval_interval == 0 or last_step:
            for name, value in evaluate(model, data, config, device).items():
                report(name, value)
            if data.text and config.sample_length:
                reporter.on_sample(step, generate_text(
                    model, data, config.sample_length, seed=config.seed + step,
                    temperature=config.sample_temperature))
        if config.attention_interval and (step % config.attention_interval == 0 or last_step):
            for name, maps in capture_attention(model, example).items():
                reporter.on_attention(step, name, maps.tolist(), tokens=tokens_fit(tokens, maps))
        if (config.checkpoint_interval and step % config.checkpoint_interval == 0) or last_step:
            checkpoint = save() or checkpoint
        if step % config.log_interval == 0 or last_step:
            # Evaluation, samples and checkpoints are not training speed: restart the clock.
            window_start, window_steps = time.perf_counter(), 0
    if lead and stopped and step > start and (checkpoint is None or not checkpoint.name.endswith(
            f"{step:06d}.safetensors")):
        checkpoint = save() or checkpoint
    return TrainResult(step, stopped, time.perf_counter() - began, last, checkpoint)


def save_weights(model: nn.Module, path: Path,
                 metadata: Mapping[str, str] | None = None) -> Path:
    """The model's weights alone, as `shipyard export --weights` reads them, with
    `metadata` in the file's header (a run's dataset manifest: "shipyard.dataset")."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(unshared(model.state_dict()), str(path), metadata=dict(metadata or {}) or None)
    return path


def unshared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as safetensors can store it: on the CPU, contiguous, and no two names
    sharing memory. A tied weight (a Linear's `tie_to`) is one tensor under two names: each
    name gets its own copy, and loading into the model ties them again."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, value in state.items():
        value = value.detach().contiguous().cpu()
        if value.data_ptr() in seen:
            value = value.clone()
        seen.add(value.data_ptr())
        tensors[name] = value
    return tensors


def train_graph(source: Any, dataset: str | Dataset, config: TrainConfig,
                reporter: Reporter | None = None, *, out_dir: Path | None = None,
                resume_from: Path | None = None, dataset_options: dict[str, Any] | None = None,
                weights_seed: int | None = None,
                initial_weights: Mapping[str, torch.Tensor] | None = None,
                frozen: Collection[str] = (),
                weights_metadata: Mapping[str, str] | None = None) -> TrainResult:
    """Compile a graph, fit a dataset to it, train, and (with `out_dir`) keep checkpoints in
    `out_dir/checkpoints` and the final weights in `out_dir/model.safetensors` (with
    `weights_metadata` in its header).

    `initial_weights`, a whole state dict of the graph's model (an imported model's), are
    the weights it starts from instead of seeded ones; a checkpoint to resume from wins.
    `frozen`: state-dict names of parameters that fine-tuning keeps as they are (`train`).

    `dataset` is a built-in name (made in the view that fits the graph) or a `Dataset` (an
    upload). Raises `FitError` listing every mismatch before any training happens, and
    `DatasetError`, `GraphError` or `ValueError` for bad input."""
    from . import compile_graph
    from .datasets import FitError, check_fit, dataset_for

    model = compile_graph(source, seed=config.seed if weights_seed is None else weights_seed)
    if initial_weights is not None:
        model.load_state_dict(initial_weights)
    if isinstance(dataset, str):
        dataset = dataset_for(model, dataset, seed=config.seed, **(dataset_options or {}))
    problems = check_fit(model, dataset)
    if problems:
        raise FitError(problems)
    result = train(model, dataset, config, reporter, resume_from=resume_from,
                   checkpoint_dir=None if out_dir is None else Path(out_dir) / "checkpoints",
                   frozen=frozen)
    if out_dir is not None:
        result.weights = save_weights(model, Path(out_dir) / "model.safetensors",
                                      weights_metadata)
    return result


__all__ = [
    "MAX_STEPS",
    "LossNotFinite",
    "Reporter",
    "SilentReporter",
    "TrainConfig",
    "TrainResult",
    "aux_loss_modules",
    "aux_loss_of",
    "capture_attention",
    "evaluate",
    "example_tokens",
    "freeze",
    "generate_text",
    "latest_checkpoint",
    "load_checkpoint",
    "make_optimizer",
    "save_checkpoint",
    "save_weights",
    "train",
    "train_graph",
]

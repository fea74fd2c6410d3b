"""The training loop: one loop for the command line and (later) the workers.

Model-agnostic: it takes a compiled module and a `Dataset`, and reports through a
`Reporter` (metrics, attention maps, text samples, checkpoints) and asks it whether to stop.
Batches are drawn from a generator seeded by (seed, step), and checkpoints keep the model,
the optimizer and the random state, so a run resumed from a checkpoint continues exactly as
if it had not stopped. Checkpoints are safetensors files: never pickle.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import Dataset
from .layers import MultiHeadAttention

MAX_MAP = 64  # attention maps are pooled down to at most this many rows and columns


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300  # optimizer steps in all
    batch_size: int = 64
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 3e-3  # peak learning rate, reached after warmup
    min_lr: float = 3e-4  # cosine decay ends here
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0  # max gradient norm; None turns clipping off
    seed: int = 0
    eval_interval: int = 50  # steps between evaluations (and text samples)
    eval_batches: int = 4
    log_interval: int = 10  # steps between train metrics
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = False  # mixed precision, CUDA only
    compile: bool = False  # torch.compile the model
    attention_interval: int = 0  # steps between attention snapshots; 0: never
    checkpoint_interval: int = 0  # steps between checkpoints; 0: only at the end
    sample_length: int = 120  # characters generated at each evaluation (text models)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_batches", "log_interval", "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr and lr > 0, got lr {self.lr}, "
                             f"min_lr {self.min_lr}")

    def lr_at(self, step: int) -> float:
        """Linear warmup to `lr`, then cosine decay to `min_lr` at the last step."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress))


class Reporter(Protocol):
    """Where a run's progress goes. Every method may do nothing."""

    def on_metric(self, step: int, name: str, value: float) -> None: ...
    def on_attention(self, step: int, node: str, maps: list[list[list[float]]]) -> None: ...
    def on_sample(self, step: int, text: str) -> None: ...
    def on_checkpoint(self, step: int, path: Path) -> None: ...
    def should_stop(self) -> bool: ...


class SilentReporter:
    def on_metric(self, step: int, name: str, value: float) -> None:
        pass

    def on_attention(self, step: int, node: str, maps: list[list[list[float]]]) -> None:
        pass

    def on_sample(self, step: int, text: str) -> None:
        pass

    def on_checkpoint(self, step: int, path: Path) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclass
class TrainResult:
    steps: int  # steps completed
    stopped: bool  # stopped early by the reporter
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)  # the last value of each


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but CUDA is not available here")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def loss_of(task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(logits.float(), y)
    if task == "sequence":
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    return F.cross_entropy(logits.float(), y)


def _batch(x: torch.Tensor, y: torch.Tensor, size: int, seed: int, step: int,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    index = torch.randint(0, len(x), (min(size, len(x)),), generator=gen)
    return x[index].to(device), y[index].to(device)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Weight decay on matrices only, as nanoGPT does: not on biases, norms or embeddings' 1-D.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, config: TrainConfig,
             device: torch.device) -> dict[str, float]:
    was_training = model.training
    model.eval()
    losses, correct, total = [], 0, 0
    for i in range(config.eval_batches):
        x, y = _batch(data.x_val, data.y_val, config.batch_size, config.seed + 7, i, device)
        logits = model(x)
        losses.append(loss_of(data.info.task, logits, y).item())
        if data.info.task != "regression":
            correct += int((logits.argmax(-1) == y).sum())
            total += y.numel()
    model.train(was_training)
    metrics = {"val_accuracy": correct / total} if total else {}
    metrics["val_loss"] = sum(losses) / len(losses)  # last: progress lines print on it
    return metrics


def attention_modules(model: nn.Module) -> dict[str, MultiHeadAttention]:
    """Every attention module by path (`blocks.0.attn`: each Repeat copy on its own)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MultiHeadAttention)}


@torch.no_grad()
def capture_attention(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-head attention weights on one example: {path: (heads, t, t)}, t ≤ 64."""
    modules = attention_modules(model)
    if not modules:
        return {}
    was_training = model.training
    model.eval()
    for m in modules.values():
        m.capture_attention = True
    try:
        model(example[:1])
        maps = {}
        for name, m in modules.items():
            weights = m.last_attention[0].float()  # type: ignore[index]
            if weights.shape[-1] > MAX_MAP:
                weights = F.adaptive_avg_pool2d(weights, (MAX_MAP, MAX_MAP))
            maps[name] = weights.cpu()
    finally:
        for m in modules.values():
            m.capture_attention = False
            m.last_attention = None
        model.train(was_training)
    return maps


@torch.no_grad()
def generate_text(model: nn.Module, data: Dataset, length: int, device: torch.device,
                  seed: int, temperature: float = 0.8) -> str:
    """Continue the first validation window, one character at a time."""
    assert data.decode is not None
    was_training = model.training
    model.eval()
    context = data.x_val[0].tolist()
    window = len(context)
    gen = torch.Generator().manual_seed(seed)
    out: list[int] = []
    for _ in range(length):
        x = torch.tensor([context[-window:]], device=device)
        logits = model(x)[0, -1].float().cpu() / temperature
        token = int(torch.multinomial(logits.softmax(-1), 1, generator=gen))
        context.append(token)
        out.append(token)
    model.train(was_training)
    return data.decode(out)


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, config: TrainConfig) -> Path:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in
               model.state_dict().items()}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"step": str(step), "config": json.dumps(asdict(config)),
            "param_groups": json.dumps(state["param_groups"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_checkpoint(path: Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer) -> int:
    """Restore model, optimizer and random state; returns the step to continue from."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": slots,
                               "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"])


def train(model: nn.Module, data: Dataset, config: TrainConfig,
          reporter: Reporter | None = None, *, checkpoint_dir: Path | None = None,
          resume_from: Path | None = None) -> TrainResult:
    """Train `model` in place on `data`; see the module doc for the guarantees."""
    reporter = reporter or SilentReporter()
    device = pick_device(config.device)
    model.to(device).train()
    optimizer = _optimizer(model, config)
    torch.manual_seed(config.seed)
    start = load_checkpoint(resume_from, model, optimizer) if resume_from else 0
    runner: Any = torch.compile(model) if config.compile else model
    use_bf16 = config.bf16 and device.type == "cuda"
    per_sample = data.y_train[0].numel() if data.info.task == "sequence" else 1
    unit = "tokens_per_s" if data.info.task == "sequence" else "samples_per_s"
    example = data.x_val[:1].to(device)
    last: dict[str, float] = {}
    began = time.perf_counter()
    tick, tick_step = began, start
    step = start
    stopped = False

    def report(name: str, value: float) -> None:
        last[name] = value
        reporter.on_metric(step, name, value)

    while step < config.steps:
        if reporter.should_stop():
            stopped = True
            break
        lr = config.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = _batch(data.x_train, data.y_train, config.batch_size, config.seed, step, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = runner(x)
        loss = loss_of(data.info.task, logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(),
                                        config.grad_clip if config.grad_clip else math.inf)
        optimizer.step()
        step += 1
        if step % config.log_interval == 0 or step == config.steps:
            now = time.perf_counter()
            report("train_loss", loss.item())
            report("lr", lr)
            report("grad_norm", float(norm))
            report(unit, (step - tick_step) * len(x) * per_sample / max(now - tick, 1e-9))
            tick, tick_step = now, step
        if step % config.eval_interval == 0 or step == config.steps:
            for name, value in evaluate(model, data, config, device).items():
                report(name, value)
            if data.decode is not None and config.sample_length:
                reporter.on_sample(step, generate_text(model, data, config.sample_length,
                                                       device, config.seed + step))
        if config.attention_interval and (step % config.attention_interval == 0
                                          or step == config.steps):
            for name, maps in capture_attention(model, example).items():
                reporter.on_attention(step, name, maps.tolist())
        if checkpoint_dir is not None and (
                (config.checkpoint_interval and step % config.checkpoint_interval == 0)
                or step == config.steps):
            path = save_checkpoint(checkpoint_dir / f"step-{step:06d}.safetensors", model,
                                   optimizer, step, config)
            reporter.on_checkpoint(step, path)
    return TrainResult(step, stopped, time.perf_counter() - began, last)


# The command line: `shipyard train FILE --dataset NAME ...` (see compute/cli.py).


class ProgressReporter(SilentReporter):
    """A progress bar on a terminal; a line per evaluation otherwise."""

    def __init__(self, total: int, stream: Any) -> None:
        self.total, self.stream = total, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.values: dict[str, float] = {}
        self.step = 0

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.values[name] = value
        self.step = step
        if self.tty:
            done = int(30 * step / self.total)
            self.stream.write(f"\r[{'#' * done}{'.' * (30 - done)}] {step}/{self.total} "
                              f"{self._line()}")
            self.stream.flush()
        elif name == "val_loss":
            self.stream.write(f"step {step}/{self.total} {self._line()}\n")

    def on_sample(self, step: int, text: str) -> None:
        prefix = "\n" if self.tty else ""
        self.stream.write(f"{prefix}sample at step {step}: {text!r}\n")

    def _line(self) -> str:
        shown = ("train_loss", "val_loss", "val_accuracy")
        return "  ".join(f"{k} {self.values[k]:.4f}" for k in shown if k in self.values)


def run_cli(argv: list[str]) -> int:
    import argparse
    import sys

    from safetensors.torch import save_file

    from . import GraphError, TensorSpec, compile_graph, inspect_graph, load_graph
    from .datasets import BUILTIN, DatasetError, check_fit, make_dataset

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="shipyard train",
                                     description="Train a graph on a built-in dataset.")
    parser.add_argument("file", help="a graph JSON file")
    parser.add_argument("--dataset", required=True, choices=list(BUILTIN))
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--optimizer", choices=["adamw", "sgd"], default=defaults.optimizer)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval-interval", type=int, default=defaults.eval_interval)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--modulus", type=int, help="modadd: the modulus (default 10)")
    parser.add_argument("--out", help="folder for the weights and checkpoints "
                        "(default: FILE's name + -run)")
    args = parser.parse_args(argv)
    err = sys.stderr
    try:
        graph = load_graph(args.file)
    except GraphError as exc:
        for p in exc.problems:
            print(f"error: {p}", file=err)
        return 1
    report = inspect_graph(graph, flops=False)
    options = {"modulus": args.modulus} if args.modulus else {}
    node = graph.inputs[0]
    spec = TensorSpec(tuple(node.params.shape), node.params.dtype)  # type: ignore[union-attr]
    try:
        data = make_dataset(args.dataset, spec, seed=args.seed, **options)
        config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             min_lr=min(args.lr / 10, defaults.min_lr),
                             optimizer=args.optimizer, seed=args.seed,
                             eval_interval=args.eval_interval, device=args.device)
        pick_device(config.device)
    except (DatasetError, ValueError) as exc:
        print(f"shipyard train: {exc}", file=err)
        return 2
    out_spec = report["nodes"][graph.outputs[0].id]["inputs"]["in"]
    problems = check_fit(graph, TensorSpec(tuple(out_spec["shape"][1:]), out_spec["dtype"]),
                         data)
    if problems:
        for sentence in problems:
            print(f"error: {sentence}", file=err)
        return 1
    out = Path(args.out or Path(args.file).with_suffix("").name + "-run")
    model = compile_graph(graph, seed=args.seed)
    print(f"training {graph.name or args.file} on {data.info.title}: {config.steps} steps, "
          f"batch {config.batch_size}, {report['totals']['params']:,} parameters", file=err)
    result = train(model, data, config, ProgressReporter(config.steps, err),
                   checkpoint_dir=out / "checkpoints")
    weights = out / "model.safetensors"
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              str(weights))
    m = result.metrics
    summary = [f"{k} {m[k]:.4f}" for k in ("train_loss", "val_loss", "val_accuracy") if k in m]
    print(f"\ndone in {result.seconds:.1f} s: {', '.join(summary)}\nweights: {weights}  "
          f"(shipyard export {args.file} --format onnx --weights {weights} -o model.onnx)",
          file=err)
    return 0

"""Data-parallel training on several devices of one machine (`TrainConfig.gpus` > 1).

`train` calls `train_distributed`, which starts one process per device with
torch.multiprocessing's spawn (a forked child cannot use CUDA once its parent has), and
stays the coordinator: the processes run the training loop (`training._train`) with DDP,
NCCL between GPUs and gloo between CPU processes; rank 0 reports through a queue to this
process, which hands each report to the run's `Reporter` and asks it whether to stop
(rank 0 broadcasts the answer at every step). Nothing a user gives crosses to the
processes but the model, the dataset and the settings, pickled by this process.

A training process that fails ends the others; its error is raised here (a ValueError
stays a ValueError, out of memory stays `torch.OutOfMemoryError`). An exception here (a
time limit) ends the processes too. No Django here.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.process as mp_process
import os
import pickle
import queue as queues
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from .datasets import Dataset
from .reporting import SilentReporter

# The training loop (training._train) and the weights' writer (training.save_weights) come
# as arguments: training imports this module, not the reverse.
Loop = Callable[..., Any]

POLL_SECONDS = 0.1  # how often the coordinator asks the reporter whether to stop, at most
END_SECONDS = 10.0  # how long a process that is asked to end has before it is killed


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run (see the module doc): its
    rank, how many processes train together, and the group that carries rank 0's stop
    flag (gloo, on the CPU, so that asking costs no GPU sync; None: the default group)."""

    rank: int
    world: int
    control: Any = None

    def share(self, size: int) -> slice:
        """This rank's part of a global batch of `size` samples."""
        per = size // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def agree(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every rank."""
        value = torch.tensor([int(flag)])
        dist.broadcast(value, 0, group=self.control)
        return bool(value.item())

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of `value` over the ranks."""
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world


def check_gpus(device: torch.device, gpus: int) -> None:
    """ValueError when `gpus` CUDA devices are asked for and this machine has fewer."""
    if device.type == "cuda" and gpus > torch.cuda.device_count():
        have = torch.cuda.device_count()
        raise ValueError(f"gpus: {gpus} GPUs were asked for, but this machine has {have} "
                         f"CUDA device{'s' if have != 1 else ''}")


def train_distributed(loop: Loop, save: Loop, model: nn.Module, data: Dataset, config: Any,
                      reporter: Any, device: torch.device, checkpoint_dir: Path | None,
                      resume_from: Path | None) -> Any:
    """Train `model` on `config.gpus` devices of `device`'s type with the training loop
    `loop` (see the module doc), and return its TrainResult; the weights rank 0 ends with
    (written with `save`) are loaded into `model`, which stays where it is."""
    world = config.gpus
    check_gpus(device, world)
    began = time.perf_counter()
    context = mp.get_context("spawn")
    events = context.Queue()
    stop = context.Event()
    with tempfile.TemporaryDirectory(prefix="shipyard-ddp-") as tmp:
        final = Path(tmp) / "final.safetensors"
        # Pickled here by value (tensors too), not through shared memory, which a container
        # may have little of.
        payload = pickle.dumps((loop, save, model, data, config, device.type,
                                checkpoint_dir, resume_from))
        processes: list[Any] = []
        try:
            with _plain_process():
                for rank in range(world):
                    processes.append(context.Process(
                        target=_rank_main, name=f"shipyard-rank-{rank}",
                        args=(rank, world, payload, str(Path(tmp) / "rendezvous"), events,
                              stop, final)))
                    processes[-1].start()
            result = _coordinate(processes, events, stop, reporter)
        finally:
            _end(processes)
            events.close()
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(final)))
    result.seconds = time.perf_counter() - began
    return result


def _coordinate(processes: list[Any], events: Any, stop: Any, reporter: Any) -> Any:
    """Hand rank 0's reports to `reporter` until every process has ended; the result rank
    0 sent, or the first error a rank sent (or a process's death) raised."""
    result: Any = None
    asked, dead_since = 0.0, 0.0
    while True:
        try:
            event = events.get(timeout=POLL_SECONDS)
        except queues.Empty:
            event = None
        if event is not None:
            kind = event[0]
            if kind == "error":  # a peer's death makes the others fail: say so first
                raise _killed(processes) or event[2]
            if kind == "done":
                result = event[1]
            else:
                _hand(reporter, event)
        now = time.monotonic()
        if not stop.is_set() and (event is not None or now - asked >= POLL_SECONDS):
            asked = now
            if reporter.should_stop():
                stop.set()
        if event is None and all(p.exitcode is not None for p in processes):
            # Every process has ended and the queue is empty (a process's last events are
            # in the queue before it exits).
            if any(p.exitcode for p in processes):
                raise _killed(processes) or _ended(processes)
            if result is None:
                raise RuntimeError("the training processes ended without a result")
            return result
        died = [p for p in processes if p.exitcode]
        if event is None and died:
            # Its error is on its way, or it was killed (out of memory): the others wait
            # for it in vain.
            dead_since = dead_since or now
            if now - dead_since > END_SECONDS:
                raise _killed(processes) or _ended(processes)


def _killed(processes: list[Any]) -> RuntimeError | None:
    """The error of a process killed by a signal (by the system, out of memory, as a rule)."""
    for p in processes:
        if p.exitcode is not None and p.exitcode < 0:
            try:
                name = signal.Signals(-p.exitcode).name
            except ValueError:
                name = f"signal {-p.exitcode}"
            return RuntimeError(f"training process {p.name} was killed ({name}); the "
                                "machine may be out of memory: try a smaller batch or model")
    return None


def _ended(processes: list[Any]) -> RuntimeError:
    died = next(p for p in processes if p.exitcode)
    return RuntimeError(f"training process {died.name} ended with exit code {died.exitcode}")


class _Plain(mp_process.BaseProcess):
    """multiprocessing's own main process (its class is not kept by name)."""

    def __init__(self) -> None:
        self._identity = ()
        self._name = "MainProcess"
        self._parent_pid = None
        self._popen = None
        self._closed = False
        key = mp_process.AuthenticationString(os.urandom(32))  # type: ignore[attr-defined]
        self._config = {"authkey": key, "semprefix": "/mp"}

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _plain_process() -> Iterator[None]:
    """Let this process make and start the training processes even when multiprocessing
    sees it as another library's daemon: a Celery prefork pool's child is billiard's process
    object, whose key cannot be pickled for a child and which may have none. The training
    processes do not outlive this one: it ends them whatever happens (`_end`), and rank 0
    ends itself, and so the others, once this process is gone (`_Relay`)."""
    current = mp_process._current_process  # type: ignore[attr-defined]
    if isinstance(current, mp_process.BaseProcess) and not current.daemon:
        yield
        return
    mp_process._current_process = _Plain()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        mp_process._current_process = current  # type: ignore[attr-defined]


def _hand(reporter: Any, event: tuple[Any, ...]) -> None:
    kind, step, *rest = event
    if kind == "metric":
        reporter.on_metric(step, *rest)
    elif kind == "attention":
        node, maps, tokens = rest
        reporter.on_attention(step, node, maps, tokens=tokens)
    elif kind == "sample":
        reporter.on_sample(step, *rest)
    elif kind == "checkpoint":
        reporter.on_checkpoint(step, *rest)


def _end(processes: list[Any]) -> None:
    """End the processes that are still running (after an error or an exception here)."""
    for process in processes:
        if process.pid is not None and process.exitcode is None:
            process.terminate()
    deadline = time.monotonic() + END_SECONDS
    for process in processes:
        if process.pid is None:
            continue
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            process.kill()
            process.join()


class _Relay(SilentReporter):
    """Rank 0's reporter: each report to the coordinator's queue; stop when it says so."""

    def __init__(self, events: Any, stop: Any) -> None:
        self.events, self.stop = events, stop

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.events.put(("metric", step, name, value))

    def on_attention(self, step: int, node: str, maps: list[list[list[float]]],
                     tokens: list[str] | None = None) -> None:
        self.events.put(("attention", step, node, maps, tokens))

    def on_sample(self, step: int, text: str) -> None:
        self.events.put(("sample", step, text))

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.events.put(("checkpoint", step, path))

    def should_stop(self) -> bool:
        parent = multiprocessing.parent_process()
        if parent is not None and not parent.is_alive():  # killed: its run is handed on
            os._exit(1)
        return bool(self.stop.is_set())


def _rank_main(rank: int, world: int, payload: bytes, rendezvous: str, events: Any,
               stop: Any, final: Path) -> None:
    """One training process (spawned): rank `rank` of `world`."""
    # Ctrl-C in a terminal reaches the whole process group: the coordinator decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        (loop, save, model, data, config, device_type, checkpoint_dir,
         resume_from) = pickle.loads(payload)
        if device_type == "cuda":
            torch.cuda.set_device(rank)
            device, backend = torch.device("cuda", rank), "nccl"
        else:
            # The machine's cores shared out, not each process on all of them.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
            device, backend = torch.device("cpu"), "gloo"
        dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank,
                                world_size=world)
        control = dist.new_group(backend="gloo") if backend != "gloo" else None
        reporter = _Relay(events, stop) if rank == 0 else SilentReporter()
        result = loop(model, data, config, reporter, device, checkpoint_dir, resume_from,
                      Ranks(rank, world, control))
        if rank == 0:
            save(model, final)
            events.put(("done", result))
        dist.barrier(group=control)  # none tears down while another still works
        dist.destroy_process_group()
        code = 0
    except BaseException as exc:
        events.put(("error", rank, _portable(exc, rank)))
        code = 1
    # Out now, its events sent: the interpreter's teardown with the process group's threads
    # may abort (SIGABRT), which would read as a crash.
    events.close()
    events.join_thread()
    os._exit(code)


def _portable(exc: BaseException, rank: int) -> BaseException:
    """`exc` as the coordinator can unpickle it: itself when it round-trips, else a
    RuntimeError (a ValueError for one) with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        kind = ValueError if isinstance(exc, ValueError) else RuntimeError
        return kind(f"training process {rank}: {exc}")


__all__ = ["Ranks", "check_gpus", "train_distributed"]

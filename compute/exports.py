"""PyTorch and ONNX files of saved graphs, made outside the web process within a time and
memory budget, and kept on disk per version.

    fetch(root=..., version=7, fmt="onnx", document=..., budget=..., wait=3)
        -> Ready(path) | Pending(error, retry_after) | Failed(error, details)

What lives under `root`:

    <version id>/<revision>/model.py, model.onnx
                        finished exports, renamed into place (never half one); the revision
                        names the engine's code and torch that made them (REVISION), so a
                        new exporter never serves an old file
    <version id>/<revision>/onnx.failed, ...
                        why the last try failed (JSON), so a model that cannot be exported is
                        not tried again on every request
    <version id>/<revision>/onnx.lock, ...
                        flock-ed by the process making that export; the kernel drops the lock
                        when it ends, however it ends
    slots/0.lock, ...                   one per export that may run at a time

A request takes the version's lock and a free slot, then hands both, still held, to a
process forked from a server that has the engine loaded and warmed up (compute.export_server;
a small model is then ready in a fraction of the seconds `import torch` alone takes). That
process forks the worker, which exports under RLIMIT_CPU and RLIMIT_AS, and kills it at the
deadline. No Django here: the children need none.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing import reduction
from pathlib import Path
from typing import Any

import torch

from .engine import GraphError, compile_graph, export_onnx, export_pytorch

FILES = {"pytorch": "model.py", "onnx": "model.onnx"}
TITLES = {"pytorch": "PyTorch", "onnx": "ONNX"}
FAILURE_SECONDS = 3600  # a failure is tried again after this long, or when the budget changes
POLL_SECONDS = 0.1
BUSY_RETRY_SECONDS = 5
MAX_MESSAGE_BYTES = 16 * 1024  # what a worker says of its failure: well under a pipe's buffer



def _revision() -> str:
    """What an export depends on besides the document: the engine's code and torch."""
    digest = hashlib.sha256(torch.__version__.encode())
    for path in sorted((Path(__file__).parent / "engine").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


REVISION = _revision()

# Exit codes of a worker that ended on its own.
_MEMORY, _INVALID, _ERROR = 3, 4, 5


@dataclass(frozen=True)
class Budget:
    seconds: int  # SHIPYARD_EXPORT_SECONDS: wall clock and CPU of one export
    memory_mb: int  # SHIPYARD_EXPORT_MEMORY_MB: memory it may take beyond the loaded engine
    processes: int  # SHIPYARD_EXPORT_PROCESSES: exports running at a time


@dataclass(frozen=True)
class Ready:
    path: Path


@dataclass(frozen=True)
class Pending:
    """Not ready yet: ask again in `retry_after` seconds. `busy`: it has not started, since
    as many exports as the budget allows are running."""

    error: str
    retry_after: int
    busy: bool


@dataclass(frozen=True)
class Failed:
    """The export failed within its budget; `details` holds `reason` (time, memory, invalid,
    error) and, for an invalid graph, its `problems`."""

    error: str
    details: dict[str, Any]


Outcome = Ready | Pending | Failed


def fetch(*, root: Path, version: int, fmt: str, document: str, budget: Budget,
          wait: float, weights: Callable[[], bytes | None] | None = None) -> Outcome:
    """The export of `document` (version `version`'s JSON) as `fmt`, started if it is neither
    made nor running; waits up to `wait` seconds for it. The model has seeded weights, or
    those of the safetensors file `weights` gives (the version's initial weights: read only
    when an export starts)."""
    folder = root / str(version) / REVISION
    deadline = time.monotonic() + wait
    while True:
        outcome = _finished(folder, fmt, budget)
        if outcome is not None:
            return outcome
        if not _start(root, folder, fmt, document, budget, weights):
            return Pending(f"{budget.processes} exports are running "
                           f"(SHIPYARD_EXPORT_PROCESSES); try again in {BUSY_RETRY_SECONDS} s",
                           BUSY_RETRY_SECONDS, busy=True)
        if time.monotonic() >= deadline:
            retry = _retry_after(folder / f"{fmt}.lock", budget)
            return Pending(f"the {TITLES[fmt]} file is being prepared; try again in {retry} s",
                           retry, busy=False)
        time.sleep(POLL_SECONDS)


def remove(*, root: Path, versions: Iterable[int]) -> None:
    """Forget the exports of these versions. One being made finds its folder gone and
    leaves nothing behind."""
    for version in versions:
        shutil.rmtree(root / str(version), ignore_errors=True)


def _finished(folder: Path, fmt: str, budget: Budget) -> Ready | Failed | None:
    path = folder / FILES[fmt]
    if path.exists():
        return Ready(path)
    try:
        record = json.loads((folder / f"{fmt}.failed").read_text())
        fresh = time.time() - record["at"] < FAILURE_SECONDS
        same = record["budget"] == [budget.seconds, budget.memory_mb]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or not one this code wrote: try again
    if not (fresh and same):
        return None  # tried again; the new try overwrites the record
    return Failed(record["error"], {k: v for k, v in record.items()
                                    if k in ("reason", "problems")})


def _retry_after(lock: Path, budget: Budget) -> int:
    """A few seconds, sooner when the budget is nearly spent, so a client polling learns of a
    failure soon after it happens."""
    with contextlib.suppress(OSError):
        left = budget.seconds - (time.time() - lock.stat().st_mtime)
        return max(1, min(BUSY_RETRY_SECONDS, math.ceil(left)))
    return BUSY_RETRY_SECONDS


def _start(root: Path, folder: Path, fmt: str, document: str, budget: Budget,
           weights: Callable[[], bytes | None] | None = None) -> bool:
    """Start the export unless it is running already. False when no slot is free."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = _locked(folder / f"{fmt}.lock")
    if lock is None:
        return True  # another request started it
    slot = None
    try:
        if _finished(folder, fmt, budget) is not None:
            return True  # ended between the caller's look and the lock
        slots = root / "slots"
        slots.mkdir(exist_ok=True)
        slot = next(filter(None, (_locked(slots / f"{i}.lock")
                                  for i in range(budget.processes))), None)
        if slot is None:
            return False
        os.utime(lock)  # when it started, for the retry hints
        # The fork server's first start loads torch for seconds: not in the request's time.
        blob = weights() if weights is not None else None
        threading.Thread(target=_launch, name=f"export-start-{folder.name}-{fmt}", daemon=True,
                         args=(lock, slot, folder, fmt, document, budget, blob)).start()
        lock = slot = None  # _launch closes them once the child holds them
        return True
    finally:
        for fd in (lock, slot):
            if fd is not None:
                os.close(fd)


def _launch(lock: int, slot: int, folder: Path, fmt: str, document: str,
            budget: Budget, weights: bytes | None = None) -> None:
    try:
        _CONTEXT.Process(target=_supervise, name=f"export-{folder.name}-{fmt}", daemon=True,
                         args=(_Held(lock), _Held(slot), folder, fmt, document, budget,
                               weights)).start()
    except Exception as exc:  # kept as the answer, rather than a new try on every request
        _record(folder, fmt, budget, {"reason": "error", "error": f"the {TITLES[fmt]} export "
                                                                  f"could not start: {exc}"})
    finally:
        os.close(lock)
        os.close(slot)


def _locked(path: Path) -> int | None:
    """An open descriptor of `path` holding its exclusive lock, or None when another holds
    it. The lock belongs to the open file, so a child given the descriptor keeps it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


class _Held:
    """A locked descriptor passed to the child process: pickled as a duplicate of the same
    open file, so the lock goes with it."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return _Held._rebuild, (reduction.DupFd(self.fd),)

    @staticmethod
    def _rebuild(dup: Any) -> _Held:
        return _Held(dup.detach())


# The child: a supervisor that forks the worker, waits for it until the deadline, and writes
# down how it failed. It holds the locks until it has.


def _supervise(lock: _Held, slot: _Held, folder: Path, fmt: str, document: str,
               budget: Budget, weights: bytes | None = None) -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: whatever happens, it never returns into the supervisor's code
        code = _ERROR
        try:
            os.close(read)
            code = _work(write, folder, fmt, document, budget, weights)
        finally:
            os._exit(code)
    os.close(write)
    status, killed = _wait(pid, budget.seconds)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode(errors="replace")
    for tmp in folder.glob(f"tmp-{pid}-*"):
        tmp.unlink(missing_ok=True)
    if not (folder / FILES[fmt]).exists():
        _record(folder, fmt, budget, _failure(fmt, status, killed, said, budget))
    os.close(lock.fd)
    os.close(slot.fd)


def _wait(pid: int, seconds: int) -> tuple[int, bool]:
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], True
        time.sleep(POLL_SECONDS)


def _failure(fmt: str, status: int, killed: bool, said: str, budget: Budget) -> dict[str, Any]:
    stopped = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    if killed or stopped == signal.SIGXCPU:
        return {"reason": "time", "error": f"exporting this model took longer than "
                                           f"{budget.seconds} s (SHIPYARD_EXPORT_SECONDS)"}
    if code == _MEMORY:
        return {"reason": "memory", "error": f"exporting this model needed more than "
                                             f"{budget.memory_mb} MB (SHIPYARD_EXPORT_MEMORY_MB)"}
    if code == _INVALID:
        return {"reason": "invalid", "error": "the graph is not valid; see problems",
                "problems": json.loads(said)}
    if code == _ERROR:
        return {"reason": "error", "error": f"the {TITLES[fmt]} export failed: {said}"}
    what = f"signal {signal.Signals(stopped).name}" if stopped else f"exit status {code}"
    return {"reason": "error", "error": f"the {TITLES[fmt]} export stopped ({what}); it may "
                                        f"need more than {budget.memory_mb} MB "
                                        f"(SHIPYARD_EXPORT_MEMORY_MB)"}


def _record(folder: Path, fmt: str, budget: Budget, failure: dict[str, Any]) -> None:
    record = {**failure, "budget": [budget.seconds, budget.memory_mb], "at": time.time()}
    tmp = folder / f"tmp-{os.getpid()}-{fmt}.failed"
    with contextlib.suppress(FileNotFoundError):  # the graph was deleted meanwhile
        tmp.write_text(json.dumps(record))
        os.replace(tmp, folder / f"{fmt}.failed")


# The worker: limits first, then the export into a file renamed into place when complete.


def _work(pipe: int, folder: Path, fmt: str, document: str, budget: Budget,
          weights: bytes | None = None) -> int:
    cap = _limit(budget)
    try:
        _export(folder, fmt, document, weights)
        return 0
    except GraphError as exc:
        if _at_cap(cap) or any(_out_of_memory(p.message) for p in exc.problems):
            said, code = "", _MEMORY  # the analysis met the memory limit, not a bad graph
        else:
            said, code = json.dumps([p.to_dict() for p in exc.problems[:50]]), _INVALID
    except MemoryError:
        said, code = "", _MEMORY
    except Exception as exc:  # any other failure becomes the answer's message
        if _at_cap(cap) or _out_of_memory(str(exc)):
            said, code = "", _MEMORY  # an error from an allocation that failed at the cap
        else:
            said, code = traceback.format_exception_only(exc)[-1].strip(), _ERROR
    os.write(pipe, said.encode()[:MAX_MESSAGE_BYTES])
    return code


def _at_cap(cap: int) -> bool:
    """Whether the address space reached its cap: whatever failed then, a failed allocation is
    the likely cause (Python itself may then fail with an odd SystemError)."""
    return _status_bytes("VmPeak") >= cap - (16 << 20)


def _out_of_memory(message: str) -> bool:
    """Whether an error says memory ran out: the analysis reports it as a problem of the node
    it was building ("...: MemoryError"), torch's allocator as "can't allocate memory"."""
    return "MemoryError" in message or "allocate" in message


def _limit(budget: Budget) -> int:
    """CPU seconds (the supervisor's deadline covers the wall clock; the alarm, the case of a
    supervisor gone), and address space: what the engine already maps plus the budget, which
    is returned."""
    resource.setrlimit(resource.RLIMIT_CPU, (budget.seconds, budget.seconds + 1))
    signal.alarm(budget.seconds + 5)  # ends a worker whose supervisor was killed, even asleep
    cap = _status_bytes("VmSize") + (budget.memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    torch.set_num_threads(1)  # one core each: exports share the machine with the app
    return cap


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _export(folder: Path, fmt: str, document: str, weights: bytes | None = None) -> None:
    module = compile_graph(json.loads(document), seed=0)
    if weights is not None:
        from safetensors.torch import load

        module.load_state_dict(load(weights))
    tmp = folder / f"tmp-{os.getpid()}-{FILES[fmt]}"
    try:
        if fmt == "pytorch":
            export_pytorch(module, tmp, weights=False)
        else:
            export_onnx(module, tmp)
        os.replace(tmp, folder / FILES[fmt])
    finally:
        tmp.unlink(missing_ok=True)


# Children fork from a server that imported this module (so torch and the engine) once,
# not from the web process, whose threads a fork would copy mid-step.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__, "compute.export_server"])

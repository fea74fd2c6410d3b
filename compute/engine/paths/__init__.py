"""Guided paths: step-by-step lessons from an empty canvas to a trained model (docs/paths.md).

A path is data, one module each beside this file (`gpt.py`, `digits.py`): its steps, each
with a short explanation, a task, a check, and the solution document "show me" puts on the
canvas. A "canvas" step is checked on the user's document through the engine's inspection
(structure and shapes, never ids or positions); "run", "attention" and "generate" steps are
completed by the editor from the run drawer, and their check says whether the canvas is
ready for them.

    from compute.engine.paths import PATHS, load_path, check_step
    load_path("gpt")["steps"][0]["title"]
    check_step("gpt", "embedding", document)  # {"passed": False, "message": ..., "node": "wte"}
"""

from __future__ import annotations

import copy
from typing import Any

from ..limits import Limits
from . import digits, gpt
from .checks import Canvas, Unmet
from .steps import CheckKind, Path, Step, StepResult

_PATHS: dict[str, Path] = {p.name: p for p in (gpt.PATH, digits.PATH)}

# name -> title, in the order the editor offers them.
PATHS: dict[str, str] = {name: p.title for name, p in _PATHS.items()}


def path_names() -> list[str]:
    return list(PATHS)


def _path(name: str) -> Path:
    found = _PATHS.get(name) if isinstance(name, str) else None
    if found is None:
        raise KeyError(f"no path named {name!r}; paths: {', '.join(PATHS)}")
    return found


def load_path(name: str) -> dict[str, Any]:
    """A path as JSON-ready data (a fresh copy): name, title, summary, dataset, and its
    steps with id, title, text, task, check and solution."""
    path = _path(name)
    return {
        "name": path.name, "title": path.title, "summary": path.summary,
        "dataset": path.dataset,
        "steps": [{"id": s.id, "title": s.title, "text": s.text, "task": s.task,
                   "check": s.check, "solution": copy.deepcopy(s.solution)}
                  for s in path.steps],
    }


def path_summary(name: str) -> dict[str, Any]:
    """What a list of paths shows: name, title, summary, number of steps, dataset."""
    path = _path(name)
    return {"name": path.name, "title": path.title, "summary": path.summary,
            "steps": len(path.steps), "dataset": path.dataset}


def step_ids(name: str) -> list[str]:
    return [s.id for s in _path(name).steps]


def check_step(name: str, step_id: str, document: Any, *,
               limits: Limits | None = None) -> StepResult:
    """Whether `document` does what the step asks (and what the steps before it asked).

    For a "canvas" step, `passed` says the step is done; for the others, that the canvas is
    ready for them (a valid model with every canvas step done): the editor completes them.
    `message` is one sentence, `node` the node it is about (its path, `blocks/attn` inside
    the Repeat `blocks`), or None. Raises KeyError for an unknown path or step; never raises
    for a bad document.
    """
    path = _path(name)
    index = next((i for i, s in enumerate(path.steps) if s.id == step_id), None)
    if index is None:
        raise KeyError(f"path {name!r} has no step {step_id!r}; steps: "
                       f"{', '.join(s.id for s in path.steps)}")
    step = path.steps[index]
    canvas = Canvas(document, limits)
    if canvas.graph is None:  # unreadable, or over the limits: nothing to look at
        reason = canvas.problems[0] if canvas.problems else "it cannot be read"
        return {"passed": False, "node": None,
                "message": f"The canvas cannot be checked: {reason.rstrip('.')}."}
    rules = [s.rule for s in path.steps[:index + 1] if s.rule is not None]
    try:
        for rule in rules:
            rule(canvas)
        if step.check != "canvas" and not canvas.valid:
            problem = canvas.problems[0].rstrip(".") if canvas.problems else "it is invalid"
            raise Unmet(f"The model cannot train yet: {problem}.")
    except Unmet as unmet:
        return {"passed": False, "message": unmet.message, "node": unmet.node}
    if step.check == "canvas":
        return {"passed": True, "message": f"Done: {step.title.rstrip('.')}.", "node": None}
    ready = {
        "run": f"train it on {path.dataset} from the run drawer",
        "attention": "open the attention tab of a finished run",
        "generate": "generate text from a finished run in the run drawer",
    }[step.check]
    return {"passed": True, "node": None, "message": f"Ready: {ready}."}


__all__ = ["PATHS", "CheckKind", "Path", "Step", "StepResult", "check_step", "load_path",
           "path_names", "path_summary", "step_ids"]

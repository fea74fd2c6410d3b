"""What a path is made of: its steps, each with a check kind and a solution document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from .checks import Predicate

CheckKind = Literal["canvas", "run", "attention", "generate"]


@dataclass(frozen=True)
class Step:
    id: str  # a slug, unique in its path
    title: str
    text: str  # markdown: a few sentences, maybe a small figure in a fenced block
    task: str  # one or two sentences: what to build
    check: CheckKind
    solution: dict[str, Any]  # the whole document after the step
    rule: Predicate | None = None  # a canvas step's own predicate (earlier steps' apply too)


def step_maker(solutions: dict[str, dict[str, Any]]) -> Callable[..., Step]:
    """How a path's file writes its steps: `step(id, title, text, task, check, rule,
    solution)`, the text stripped, the solution the document of `solution` (a step id,
    for a step whose canvas is another's) or else of the step's own id."""

    def step(step_id: str, title: str, text: str, task: str, check: CheckKind = "canvas",
             rule: Predicate | None = None, solution: str | None = None) -> Step:
        return Step(step_id, title, text.strip(), task, check, solutions[solution or step_id],
                    rule)

    return step


@dataclass(frozen=True)
class Path:
    name: str
    title: str
    summary: str
    dataset: str  # the built-in dataset its model trains on
    steps: tuple[Step, ...]


class StepResult(TypedDict):
    passed: bool
    message: str
    node: str | None

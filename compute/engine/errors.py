"""Problems found in a graph: values keyed by node, never exceptions for the caller to parse."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph, phrased so that a newcomer can act on it.

    `node` is the id of the node at fault, with nested nodes written as a path
    (`blocks/attn` is node `attn` inside the Repeat `blocks`); None for the graph as a
    whole. `field` names the parameter, port or member at fault, where one is.
    """

    message: str
    node: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.node if self.node is not None else "graph"
        if self.field:
            where = f"{where} ({self.field})"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def nested_in(self, parent: str) -> Problem:
        """The same problem seen from the graph that holds `parent`'s subgraph."""
        node = parent if self.node is None else f"{parent}/{self.node}"
        return Problem(self.message, node, self.field)


class GraphError(ValueError):
    """A graph that cannot be used, carrying every problem found in it."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the graph:\n{lines}")

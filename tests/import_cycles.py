"""An import-linter contract type, `acyclic` (pyproject.toml, [tool.importlinter]): no
module of the given packages reaches itself by following imports. Imports inside functions
count (grimp reads every import statement), so a cycle cannot hide in one.

import-linter's own `acyclic_siblings` checks sibling packages and modules; it does not see
a cycle between a package and a module inside it, nor one that runs through two of the
root packages. This one follows every import between the packages' modules."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicContract(Contract):
    type_name = "acyclic"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        packages: list[str] = self.packages  # type: ignore[assignment]
        modules = set(packages).union(*(graph.find_descendants(p) for p in packages))
        cycles = [_cycle_through(graph, min(group))
                  for group in strongly_connected(graph, modules) if len(group) > 1]
        described = [[(a, b, _lines(graph, a, b)) for a, b in pairwise(c)]
                     for c in cycles]
        return ContractCheck(kept=not cycles, metadata={"cycles": described})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"{cycle[0][0]} imports itself through:")
            for importer, imported, lines in cycle:
                output.print(f"    {importer} -> {imported} (l. {lines})")
            output.new_line()


def strongly_connected(graph: ImportGraph, modules: set[str]) -> list[set[str]]:
    """The groups of modules that all reach each other (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def imports(module: str) -> Iterable[str]:
        return sorted(graph.find_modules_directly_imported_by(module) & modules)

    for root in sorted(modules):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(imports(root)))]
        while work:
            module, todo = work[-1]
            following = next(todo, None)
            if following is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == module:
                            break
                    groups.append(group)
            elif following not in index:
                index[following] = low[following] = len(index)
                stack.append(following)
                on_stack.add(following)
                work.append((following, iter(imports(following))))
            elif following in on_stack:
                low[module] = min(low[module], index[following])
    return groups


def _cycle_through(graph: ImportGraph, module: str) -> list[str]:
    """The shortest way from `module` back to itself: [module, ..., module]."""
    shortest: tuple[str, ...] | None = None
    for following in sorted(graph.find_modules_directly_imported_by(module)):
        chain = graph.find_shortest_chain(importer=following, imported=module)
        if chain is not None and (shortest is None or len(chain) < len(shortest)):
            shortest = chain
    assert shortest is not None, module
    return [module, *shortest]


def _lines(graph: ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(str(d["line_number"]) for d in details) or "?"

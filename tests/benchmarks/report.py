"""What the benchmark scripts share: a results row, the table they end with, percentiles,
and the error that makes a run no valid measurement. The scripts run by path, so this file
is imported as `report` from beside them."""

from __future__ import annotations

from dataclasses import dataclass


class Invalid(Exception):
    """Something the benchmark relies on is wrong: the run is not a valid measurement."""


@dataclass
class Row:
    measurement: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: for information
    note: str = ""  # in place of the verdict, e.g. NOISY


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def print_table(rows: list[Row]) -> None:
    w1 = max(len(r.measurement) for r in rows)
    w2 = max(len(r.value) for r in rows)
    w3 = max(max(len(r.target) for r in rows), len("target"))
    print("\n== results ==")
    print(f"{'measurement':<{w1}}  {'value':>{w2}}  {'target':<{w3}}  result")
    print("-" * (w1 + w2 + w3 + 12))
    for r in rows:
        verdict = r.note or ("" if r.ok is None else ("ok" if r.ok else "OVER"))
        print(f"{r.measurement:<{w1}}  {r.value:>{w2}}  {r.target:<{w3}}  {verdict}")

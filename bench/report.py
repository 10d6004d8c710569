"""Shared helpers for benchmarks: percentiles and the comparison table every bench prints."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass
class Row:
    what: str
    ours: float
    peer: float | None
    unit: str
    better: str = "higher"  # which direction is better, to print the ratio the right way round

    @property
    def ratio(self) -> float | None:
        if self.peer is None or self.peer == 0 or self.ours == 0:
            return None
        return self.ours / self.peer if self.better == "higher" else self.peer / self.ours


def print_table(title: str, ours: str, peer: str, rows: list[Row], *, json_out: bool = False) -> None:
    if json_out:
        json.dump({"title": title, "ours": ours, "peer": peer, "rows": [
            {"what": r.what, "ours": r.ours, "peer": r.peer, "unit": r.unit, "ratio": r.ratio} for r in rows]},
            sys.stdout, indent=1)
        print()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("measure")
    table.add_column(ours, justify="right")
    table.add_column(peer, justify="right")
    table.add_column("ratio (>1: ours better)", justify="right")
    for r in rows:
        table.add_row(f"{r.what} [{r.unit}]", f"{r.ours:,.2f}", "-" if r.peer is None else f"{r.peer:,.2f}",
                      "-" if r.ratio is None else f"{r.ratio:.2f}x")
    Console(width=max(120, Console().width)).print(table)

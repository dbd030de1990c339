"""The learning curve: golden measures of every tier against the annotation budget in queries
(how many labels do I need?), read from the sweep over `sampling.annotate.max_queries`
(conf/sweep/learning_curve.yaml, `metrics/sweeps/learning_curve.json`).

| input                    | what it is                                                      |
| ------------------------ | --------------------------------------------------------------- |
| `sweep`                  | `sweep.sweep_spread`'s output: per tier, measure -> values per grid point |
| `all_queries`            | the annotate split's query count, for the point `null` (= all)   |

The rows are written as a wide CSV (one column per tier) for `dvc plots show` and drawn as
a PNG for the report page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from relevance_kit.io import atomic_path

BUDGET = "sampling.annotate.max_queries"  # the sweep's grid key
X = "annotated_queries"


def curve_rows(
    sweep: Mapping[str, Any], all_queries: int, measure: str = "macro_f1"
) -> pd.DataFrame:
    """One row per grid point (sorted by budget): `annotated_queries` and each tier's
    `measure`; the budget null (every query of the annotate split) is `all_queries`."""
    if list(sweep["grid"]) != [BUDGET]:
        raise ValueError(
            f"a learning curve sweeps {BUDGET} alone; this sweep's grid: {list(sweep['grid'])}"
        )
    budgets = [
        all_queries if b is None else min(int(b), all_queries) for b in sweep["grid"][BUDGET]
    ]
    rows = pd.DataFrame({X: budgets})
    for tier, measures in sorted(sweep["tiers"].items()):
        if measure in measures:
            rows[tier] = measures[measure]["values"]
    return rows.sort_values(X, kind="stable").reset_index(drop=True)


def plot_curve(rows: pd.DataFrame, path: str | Path, measure: str = "golden macro-F1") -> None:
    """Each tier's measure against the annotated queries (log scale), one line per tier."""
    fig = Figure(figsize=(6.4, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for tier in rows.columns.drop(X):
        learned = tier in ("teacher", "student", "annotator")
        ax.plot(
            rows[X], rows[tier], marker="o", label=tier, linewidth=2.2 if learned else 1.0,
            linestyle="-" if learned else "--",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(rows[X], [str(x) for x in rows[X]])
    ax.minorticks_off()  # the budgets are the only ticks
    ax.set_xlabel("annotated queries")
    ax.set_ylabel(measure)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

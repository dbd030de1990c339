"""The learning curve from a real sweep summary (`sweep_spread` over `dvc exp show --json`
rows): rows per annotation budget, the CSV DVC plots and the PNG the report embeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from relevance_kit.evaluation.learning_curve import BUDGET, curve_rows, plot_curve
from relevance_kit.sweep import Sweep, sweep_spread


def learning_sweep(f1: dict[str, list[float]], budgets: list[int | None]) -> dict:
    """`sweep_spread` of one workspace run and experiments at each budget."""

    def run(budget: int | None, i: int) -> dict:
        params = {"experiment": "cpu_demo", "sampling": {"annotate": {"max_queries": budget}}}
        tiers = {tier: {"macro_f1": {"estimate": values[i]}} for tier, values in f1.items()}
        return {"data": {"params": {"params.yaml": {"data": params}}, "metrics": {"metrics/tiers.json": {"data": {"tiers": tiers}}}}}  # fmt: skip

    workspace, *others = [run(b, i) for i, b in reversed(list(enumerate(budgets)))]
    shown = [{**workspace, "rev": "abc1234", "experiments": [{"revs": [r]} for r in others]}]
    return sweep_spread(shown, Sweep(name="learning_curve", grid={BUDGET: budgets}))


def test_rows_follow_the_budget_and_null_is_the_whole_split() -> None:
    sweep = learning_sweep(
        {"teacher": [0.30, 0.35, 0.40], "bm25": [0.41, 0.41, 0.41]}, [30, 15, None]
    )
    rows = curve_rows(sweep, all_queries=60)
    assert rows["annotated_queries"].tolist() == [15, 30, 60]
    assert rows["teacher"].tolist() == [0.35, 0.30, 0.40]  # each value stays with its budget
    assert rows["bm25"].tolist() == [0.41] * 3
    assert curve_rows(learning_sweep({"teacher": [0.3]}, [100]), all_queries=60)[
        "annotated_queries"
    ].tolist() == [60]
    with pytest.raises(ValueError, match="sweeps sampling.annotate.max_queries alone"):
        curve_rows({**sweep, "grid": {"training_seed": [1, 2]}}, all_queries=60)


def test_plot_draws_every_tier(tmp_path: Path) -> None:
    sweep = learning_sweep(
        {"teacher": [0.30, 0.35, 0.40], "student": [0.28, 0.33, 0.36]}, [15, 30, None]
    )
    rows = curve_rows(sweep, all_queries=60)
    plot_curve(rows, tmp_path / "curve.png")
    pixels = np.asarray(Image.open(tmp_path / "curve.png").convert("RGB"), dtype=np.int16)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 60  # the two tiers' line colours
    assert coloured.mean() > 0.002

"""Sweeps: the queue command a sweep file gives, and the spread of each tier over the grid
read back from `dvc exp show --json` (its real shape is exercised end to end in
test_pipeline_e2e's sweep test; here small hand-made tables check the arithmetic)."""

from __future__ import annotations

import statistics

import pytest

from relevance_kit.errors import ConfigError
from relevance_kit.sweep import Sweep, load_sweep, queue_command, sweep_spread
from tests.conftest import REPO


def _run(
    seed: int, taxonomy: str, macro_f1: float, stamp: str | None, experiment: str = "cpu_demo"
) -> dict:
    """One row of `dvc exp show --json`: params and the tier table of a run."""
    row = {
        "macro_f1": {"estimate": macro_f1},
        "vs_reference": {"diff": macro_f1 - 0.4},
        "threshold_free": {"ndcg_at_10": {"estimate": macro_f1 + 0.3}},
    }
    return {
        "data": {
            "timestamp": stamp,
            "params": {"params.yaml": {"data": {"experiment": experiment, "training_seed": seed, "taxonomy": {"name": taxonomy}}}},
            "metrics": {"metrics/tiers.json": {"data": {"tiers": {"teacher": row}}}},
        }
    }  # fmt: skip


def _shown(*experiments: dict, workspace: dict) -> list[dict]:
    return [{**workspace, "experiments": [{"revs": [e]} for e in experiments]}]


def test_training_seeds_sweep_queues_the_three_seeds() -> None:
    sweep = load_sweep(REPO / "conf" / "sweep" / "training_seeds.yaml")
    cmd = queue_command(sweep)
    assert cmd[:4] == ["dvc", "exp", "run", "--queue"]
    assert "training_seed=42,1,2" in cmd


def test_spread_over_the_grid_uses_the_workspace_and_the_newest_run_per_point() -> None:
    sweep = Sweep(name="seeds", overrides={"taxonomy": "etsy3"}, grid={"training_seed": [42, 1, 2]})
    shown = _shown(
        _run(1, "etsy3", 0.30, "2026-12-01T10:00:00"),
        _run(1, "etsy3", 0.34, "2026-12-01T11:00:00"),  # a rerun of seed 1: the newest counts
        _run(2, "etsy3", 0.41, "2026-12-01T10:30:00"),
        _run(2, "esci4", 0.90, "2026-12-01T12:00:00"),  # another sweep's point: not this one
        _run(2, "etsy3", 0.20, "2026-12-01T13:00:00", "ci_tiny"),  # another experiment's run
        workspace=_run(42, "etsy3", 0.38, None),
    )
    # DVC writes null for what a run lacks (a queued or failed one): such runs are passed over
    shown[0]["experiments"].append({"revs": [{"data": {"params": None, "metrics": None}}]})
    spread = sweep_spread(shown, sweep)
    macro = spread["tiers"]["teacher"]["macro_f1"]
    assert macro["values"] == [0.38, 0.34, 0.41]
    assert macro["mean"] == pytest.approx(statistics.fmean([0.38, 0.34, 0.41]))
    assert macro["sd"] == pytest.approx(statistics.stdev([0.38, 0.34, 0.41]))
    assert (macro["min"], macro["max"]) == (0.34, 0.41)
    assert spread["tiers"]["teacher"]["ndcg"]["values"] == pytest.approx([0.68, 0.64, 0.71])
    assert "auc_relevant" not in spread["tiers"]["teacher"]  # not in these tables: left out
    assert spread["grid"] == {"training_seed": [42, 1, 2]}
    assert spread["experiment"] == "cpu_demo"  # the workspace's: the run the sweep varies
    assert spread["commits"] == ["?"]  # these hand-made rows name no commit


def test_a_grid_point_without_a_finished_run_is_named() -> None:
    sweep = Sweep(name="seeds", grid={"training_seed": [42, 7]})
    with pytest.raises(ConfigError, match=r"grid point\(s\) \[\(7,\)\] \(training_seed\); not run"):
        sweep_spread(_shown(workspace=_run(42, "etsy3", 0.38, None)), sweep)
    # a failed run lists its params beside its parent's metrics: it never counts
    failed = {**_run(7, "etsy3", 0.38, "2026-12-01T10:00:00"), "name": "snide-trey"}
    failed["error"] = {"msg": "Experiment run failed", "type": ""}
    with pytest.raises(ConfigError, match=r"failed: snide-trey"):
        sweep_spread(_shown(failed, workspace=_run(42, "etsy3", 0.38, None)), sweep)

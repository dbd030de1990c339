"""Sweeps declared in YAML (`conf/sweep/*.yaml`), run as a DVC experiment queue.

A sweep file names fixed overrides and a grid of value lists; its grid becomes one
`dvc exp run --queue -S key=a,b ...` (DVC expands the product), then `--run-all` runs it
and `dvc exp show` compares the results. No home-made experiment machinery.

After the run, `sweep_spread` reads the experiments' tier tables back from `dvc exp show
--json` and writes `metrics/sweeps/<name>.json`: each tier's golden measures at every grid
point, with their mean, standard deviation and range. Over `training_seed` alone
(conf/sweep/training_seeds.yaml) that is the training noise of each learned tier, the
yardstick a recipe change has to beat.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relevance_kit.errors import ConfigError
from relevance_kit.io import write_json

TIERS_FILE = "metrics/tiers.json"
# measure name -> its path inside a tier's row of tiers.json (an estimate)
MEASURES = {
    "macro_f1": ("macro_f1", "estimate"),
    "diff_vs_reference": ("vs_reference", "diff"),
    "auc_relevant": ("threshold_free", "auc_vs_rest", "relevant", "estimate"),
    "auc_irrelevant": ("threshold_free", "auc_vs_rest", "irrelevant", "estimate"),
    "ndcg": ("threshold_free", "ndcg_at_10", "estimate"),
}


class Sweep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    overrides: dict[str, Any] = {}
    grid: dict[str, list[Any]] = Field(min_length=1)


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    try:
        return Sweep.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{path}: sweep file not found") from None
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid sweep: {details}") from None


def queue_command(sweep: Sweep, dvc: str = "dvc") -> list[str]:
    """The `dvc exp run --queue` command that enqueues the sweep's whole grid."""
    cmd = [dvc, "exp", "run", "--queue"]
    for key, value in sweep.overrides.items():
        cmd += ["-S", f"{key}={_hydra_value(value)}"]
    for key, values in sweep.grid.items():
        if not values:
            raise ConfigError(f"sweep {sweep.name}: grid.{key} is empty")
        cmd += ["-S", f"{key}={','.join(_hydra_value(v) for v in values)}"]
    return cmd


def run_sweep(path: str | Path, dvc: str = "dvc", jobs: int = 1) -> Path:
    """Queue the grid, run the queue, print the comparison table, and write each tier's
    spread over the grid (`metrics/sweeps/<name>.json`, returned)."""
    sweep = load_sweep(path)
    for cmd in (
        queue_command(sweep, dvc),
        [dvc, "exp", "run", "--run-all", "--jobs", str(jobs)],
        [dvc, "exp", "show", "--no-pager"],
    ):
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    shown = subprocess.run(
        [dvc, "exp", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    out = Path("metrics") / "sweeps" / f"{sweep.name}.json"  # the report shows training_seeds
    write_json(sweep_spread(json.loads(shown), sweep), out)
    print(f"wrote {out}")
    return out


def sweep_spread(shown: list[dict[str, Any]], sweep: Sweep) -> dict[str, Any]:
    """Each tier's measures at every grid point of `sweep` among the experiments of `dvc exp
    show --json` (`shown`), and their mean, sample standard deviation, min and max. An
    experiment counts when its params match the sweep's overrides and, unless those name
    one, its `experiment` is the workspace's (the sweep varies the run in front of it); the
    newest run of a grid point wins. Raises ConfigError when a grid point has no finished
    experiment."""
    points: dict[tuple, dict[str, Any]] = {}
    fixed = dict(sweep.overrides)
    workspace = _get_path(shown[0] if shown else {}, ("data", "params", "params.yaml", "data"))
    fixed.setdefault("experiment", (workspace or {}).get("experiment"))
    runs = [
        (commit.get("rev", "?"), run)
        for commit in shown
        for run in [
            commit,
            *(r for e in commit.get("experiments") or [] for r in e.get("revs", [])),
        ]
    ]  # (the commit it ran on, the run): the workspace and commits too, a point may be one
    failed = sorted(run.get("name") or run.get("rev", "?") for _, run in runs if run.get("error"))
    for base, run in runs:
        if run.get("error"):  # a failed run still lists its params, beside its parent's metrics
            continue
        data = run.get("data") or {}  # DVC writes null for what a run lacks
        params = _get_path(data, ("params", "params.yaml", "data")) or {}
        tiers = _get_path(data, ("metrics", TIERS_FILE, "data", "tiers"))
        if tiers is None or any(_get(params, k) != v for k, v in fixed.items()):
            continue
        point = tuple(_get(params, key) for key in sweep.grid)
        stamp = data.get("timestamp") or ""  # the workspace has none
        if point not in points or stamp > points[point]["timestamp"]:
            points[point] = {
                "timestamp": stamp,
                "tiers": tiers,
                "base": base if base == "workspace" else base[:7],
            }
    wanted = list(itertools.product(*sweep.grid.values()))  # the order DVC queues them in
    missing = [p for p in wanted if p not in points]
    if missing:
        why = f"failed: {', '.join(failed)} (`dvc queue logs <name>`)" if failed else "not run"
        raise ConfigError(
            f"sweep {sweep.name}: no finished experiment for grid point(s) {missing} "
            f"({', '.join(sweep.grid)}); {why}"
        )
    tiers = sorted({t for p in wanted for t in points[p]["tiers"]})
    table: dict[str, Any] = {}
    for tier in tiers:
        rows = [points[p]["tiers"].get(tier, {}) for p in wanted]
        table[tier] = {}
        for name, path in MEASURES.items():
            values = [_get_path(row, path) for row in rows]
            if any(v is None for v in values):
                continue
            table[tier][name] = {
                "values": values,
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
            }
    return {
        "sweep": sweep.name,
        "experiment": fixed["experiment"],
        "commits": sorted({points[p]["base"] for p in wanted}),  # the code each point ran
        "overrides": sweep.overrides,
        "grid": {key: [p[i] for p in wanted] for i, key in enumerate(sweep.grid)},
        "tiers": table,
    }


def _get(params: dict[str, Any], dotted: str) -> Any:
    """A dotted key of params.yaml; a group choice (`taxonomy=esci4`) is its option's `name`."""
    node = _get_path(params, tuple(dotted.split(".")))
    return node.get("name") if isinstance(node, dict) else node


def _get_path(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _hydra_value(value: Any) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )

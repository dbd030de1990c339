"""Sweeps declared in YAML (`conf/sweep/*.yaml`), run as a DVC experiment queue.

A sweep file names fixed overrides and a grid of value lists; its grid becomes one
`dvc exp run --queue -S key=a,b ...` (DVC expands the product), then `--run-all` runs it
and `dvc exp show` compares the results. No home-made experiment machinery.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relevance_kit.errors import ConfigError


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


def run_sweep(path: str | Path, dvc: str = "dvc", jobs: int = 1) -> None:
    """Queue the grid, run the queue, and print the comparison table."""
    sweep = load_sweep(path)
    for cmd in (
        queue_command(sweep, dvc),
        [dvc, "exp", "run", "--run-all", "--jobs", str(jobs)],
        [dvc, "exp", "show", "--no-pager"],
    ):
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def _hydra_value(value: Any) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )

"""Shared fixtures: the repository root, the real ESCI data, and throw-away project folders
in which stage scripts run exactly as DVC runs them (cwd = project root, params.yaml there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from relevance_kit.config import compose

REPO = Path(__file__).resolve().parents[1]
ESCI_DIR = (REPO / ".." / "shared" / "datasets" / "esci-us").resolve()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def esci_dir() -> Path:
    if not (ESCI_DIR / "esci_us_judgments.json").exists():
        pytest.skip(f"the ESCI-US sample is not at {ESCI_DIR}")
    return ESCI_DIR


def set_key(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict (creating nothing: the path must exist but the last key)."""
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value


def write_project(
    root: Path,
    overrides: list[str] | None = None,
    edits: dict[str, Any] | None = None,
    raw_text: str | None = None,
) -> Path:
    """A project folder: conf/ linked from the repo, params.yaml composed from `overrides`
    (reading the real data from ../shared) and then edited with `edits` ({dotted.key: value})."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "conf").exists():
        (root / "conf").symlink_to(REPO / "conf")
    raw = yaml.safe_load(compose(overrides or ["experiment=ci_tiny"], REPO / "conf"))
    raw["data"]["mirror_dirs"] = [str(ESCI_DIR)]
    raw["data"]["download"] = False
    for key, value in (edits or {}).items():
        set_key(raw, key, value)
    (root / "params.yaml").write_text(
        raw_text if raw_text is not None else yaml.safe_dump(raw, sort_keys=False)
    )
    return root


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Make a throw-away project folder (see `write_project`); edits inject mistakes."""

    def make(
        overrides: list[str] | None = None,
        edits: dict[str, Any] | None = None,
        raw_text: str | None = None,
    ) -> Path:
        return write_project(tmp_path / "project", overrides, edits, raw_text)

    return make


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory, esci_dir: Path) -> Path:
    """The cpu_demo `data/` up to the golden set (stages prepare, sample, golden), built once
    per session from the real sample, so no test depends on a local `dvc repro`."""
    root = write_project(tmp_path_factory.mktemp("demo") / "project", ["experiment=cpu_demo"])
    for stage in ("prepare", "sample", "golden"):
        done = run_stage(stage, root)
        assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
    return root / "data"


def colour_product_label(query: tuple[str, str], listing: tuple[str, str]) -> str:
    """The toy catalogues' judgment of a (colour, product) query against a (colour, product)
    listing: both match -> relevant, the product only -> partially relevant, else irrelevant."""
    if query == listing:
        return "relevant"
    return "partially_relevant" if query[1] == listing[1] else "irrelevant"


def pytest_configure(config: pytest.Config) -> None:
    """Tests interrupt stages with SIGINT. A shell starts background jobs with SIGINT ignored
    (`nohup make test &`), children inherit an ignored signal (not a handler), and Python then
    installs no KeyboardInterrupt handler: the signal would do nothing. So handle it here;
    every child then starts with the default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_stage(name: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run `stages/<name>.py` as DVC would: from the project root."""
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def files_under(root: Path, *folders: str) -> list[Path]:
    return [p for folder in folders for p in (root / folder).rglob("*") if p.is_file()]

"""End to end: real `dvc repro`, `dvc exp run -S` and a sweep on `ci_tiny`, in a temporary
git copy of this repository (the real ESCI sample, tiny splits)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ESCI_DIR, REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def sh(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the copy's own relevance_kit, not the (editable) install's working tree.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(cwd)}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git copy of the working tree (tracked and new, non-ignored files), with ../shared
    beside it as in CI, on ci_tiny."""
    if not (ESCI_DIR / "esci_us_judgments.json").exists():
        pytest.skip(f"the ESCI-US sample is not at {ESCI_DIR}")
    base = tmp_path_factory.mktemp("e2e")
    (base / "shared" / "datasets").mkdir(parents=True)
    (base / "shared" / "datasets" / "esci-us").symlink_to(ESCI_DIR)
    root = base / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in filter(None, files.stdout.split("\0")):
        if (REPO / name).exists():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    sh([str(BIN / "relevance-kit"), "compose", "experiment=ci_tiny"], root)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        sh(cmd, root)
    return root


def test_repro_cold_then_noop(repo_copy: Path) -> None:
    sh(["dvc", "repro"], repo_copy)
    tiers = json.loads((repo_copy / "metrics" / "tiers.json").read_text())
    assert {"majority", "bm25", "minilm_zero_shot"} <= set(tiers["tiers"])
    for row in tiers["tiers"].values():
        assert 0.0 <= row["macro_f1"]["low"] <= row["macro_f1"]["estimate"] <= row["macro_f1"]["high"] <= 1.0
    assert (repo_copy / "reports" / "tiers.md").read_text().count("minilm_zero_shot") >= 1
    second = sh(["dvc", "repro"], repo_copy)
    assert "Running stage" not in second.stdout, second.stdout


def test_exp_run_swaps_taxonomy(repo_copy: Path) -> None:
    sh(["dvc", "exp", "run", "-S", "experiment=ci_tiny", "-S", "taxonomy=esci4"], repo_copy)
    tiers = json.loads((repo_copy / "metrics" / "tiers.json").read_text())
    labels = set(next(iter(tiers["tiers"].values()))["f1"])
    assert labels == {"exact", "substitute", "complement", "irrelevant"}


def test_sweep_queues_and_runs_a_two_point_grid(repo_copy: Path) -> None:
    sh(["git", "checkout", "-q", "--", "."], repo_copy)
    sh([str(BIN / "relevance-kit"), "sweep", "conf/sweep/ci_two_point.yaml"], repo_copy)
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], repo_copy).stdout)
    taxonomies = set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                params = rev["data"]["params"]["params.yaml"]["data"]
                taxonomies.add(params["taxonomy"]["name"])
    assert {"etsy3", "esci4"} <= taxonomies

"""End to end: real `dvc repro`, `dvc status` after edits, `dvc exp run -S` and a sweep on
`ci_tiny`, in a temporary git copy of this repository (the real ESCI sample, tiny splits).
One cold `dvc repro` (the `reproduced` fixture) serves every test of the module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ESCI_DIR, REPO
from tests.test_dvc_deps import STAGES, import_closure

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


GIT_COMMIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm"]


@pytest.fixture(scope="module")
def reproduced(repo_copy: Path) -> Path:
    """The copy after one cold `dvc repro`, committed, so `git checkout -- .` and
    `dvc checkout` bring any later test back to an up-to-date pipeline."""
    sh(["dvc", "repro"], repo_copy, timeout=1800)  # the one cold run: ~10 min on 2 busy cores
    sh(["git", "add", "-A"], repo_copy)
    sh([*GIT_COMMIT, "reproduced"], repo_copy)
    return repo_copy


def test_repro_cold_then_noop(reproduced: Path) -> None:
    tiers = json.loads((reproduced / "metrics" / "tiers.json").read_text())
    assert {"majority", "bm25", "minilm_zero_shot"} <= set(tiers["tiers"])
    for row in tiers["tiers"].values():
        assert 0.0 <= row["macro_f1"]["low"] <= row["macro_f1"]["estimate"] <= row["macro_f1"]["high"] <= 1.0
    assert (reproduced / "reports" / "tiers.md").read_text().count("minilm_zero_shot") >= 1
    second = sh(["dvc", "repro"], reproduced)
    assert "Running stage" not in second.stdout, second.stdout


def _stale_stages(root: Path) -> set[str]:
    status = json.loads(sh(["dvc", "status", "--json"], root).stdout or "{}")
    return {name.rpartition(":")[2] for name in status}


def _edit(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text()
    assert text.count(old) == 1, f"{file}: expected one {old!r}"
    path.write_text(text.replace(old, new))


def _importers(module: str) -> set[str]:
    return {stage for stage in STAGES if module in import_closure(REPO / "stages" / f"{stage}.py")}


# (file, old text, new text, stages that must go stale). Settings changes are recomposed into
# params.yaml (`relevance-kit compose experiment=ci_tiny`), as a user does before `dvc repro`.
EDITS = {
    "conf default": ("conf/evaluation/default.yaml", "confidence: 0.95", "confidence: 0.9", {"evaluate"}),
    "benchmark setting": ("conf/student/tiny_random.yaml", "teacher_pairs: 64", "teacher_pairs: 65", set()),
    "config.py default": (
        "relevance_kit/config.py", "bias_bootstrap: Annotated[int, Field(ge=0)] = 30",
        "bias_bootstrap: Annotated[int, Field(ge=0)] = 31", {"train_teacher", "teacher_label"},
    ),
    "module": (
        "relevance_kit/integrate/scorers.py", '"""Where predicted relevance', '"""Edited. Where predicted relevance',
        _importers("relevance_kit/integrate/scorers.py"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(EDITS))
def test_dvc_status_lists_exactly_the_stages_an_edit_affects(reproduced: Path, case: str) -> None:
    file, old, new, expected = EDITS[case]
    sh(["git", "checkout", "-q", "--", "."], reproduced)
    sh(["dvc", "checkout", "-q"], reproduced)
    assert _stale_stages(reproduced) == set(), "the reproduced pipeline is not up to date"
    try:
        _edit(reproduced, file, old, new)
        sh([str(BIN / "relevance-kit"), "compose", "experiment=ci_tiny"], reproduced)
        assert _stale_stages(reproduced) == expected, case
    finally:
        sh(["git", "checkout", "-q", "--", "."], reproduced)


def test_exp_run_swaps_taxonomy(reproduced: Path) -> None:
    sh(["dvc", "exp", "run", "-S", "experiment=ci_tiny", "-S", "taxonomy=esci4"], reproduced)
    tiers = json.loads((reproduced / "metrics" / "tiers.json").read_text())
    labels = set(next(iter(tiers["tiers"].values()))["f1"])
    assert labels == {"exact", "substitute", "complement", "irrelevant"}


def test_sweep_queues_and_runs_a_two_point_grid(reproduced: Path) -> None:
    sh(["git", "checkout", "-q", "--", "."], reproduced)
    sh([str(BIN / "relevance-kit"), "sweep", "conf/sweep/ci_two_point.yaml"], reproduced)
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], reproduced).stdout)
    taxonomies = set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                params = rev["data"]["params"]["params.yaml"]["data"]
                taxonomies.add(params["taxonomy"]["name"])
    assert {"etsy3", "esci4"} <= taxonomies

"""End to end: real `dvc repro`, `dvc status` after edits, `dvc exp run -S` and a sweep on
`ci_tiny`, in a temporary git copy of this repository (the real ESCI sample, tiny splits).
One cold `dvc repro` (the `reproduced` fixture) serves every test of the module."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ESCI_DIR, REPO
from tests.test_dvc_deps import STAGES, import_closure

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
GIT_COMMIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm"]


def sh(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the copy's own relevance_kit, not the (editable) install's working tree.
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(cwd),
    }
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def git_copy(base: Path, overrides: list[str]) -> Path:
    """A git copy of the working tree (tracked and new, non-ignored files) in `base/project`,
    with ../shared beside it as in CI, params.yaml composed from `overrides`."""
    (base / "shared" / "datasets").mkdir(parents=True)
    (base / "shared" / "datasets" / "esci-us").symlink_to(ESCI_DIR)
    root = base / "project"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in filter(None, files.stdout.split("\0")):
        if (REPO / name).is_file():  # not a linked folder such as a worktree's .venv
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    sh([str(BIN / "relevance-kit"), "compose", *overrides], root)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*GIT_COMMIT, "copy"]):
        sh(cmd, root)
    return root


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git copy of this repository on ci_tiny."""
    if not (ESCI_DIR / "esci_us_judgments.json").exists():
        pytest.skip(f"the ESCI-US sample is not at {ESCI_DIR}")
    return git_copy(tmp_path_factory.mktemp("e2e"), ["experiment=ci_tiny"])


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
        assert (
            0.0
            <= row["macro_f1"]["low"]
            <= row["macro_f1"]["estimate"]
            <= row["macro_f1"]["high"]
            <= 1.0
        )
    assert (reproduced / "reports" / "tiers.md").read_text().count("minilm_zero_shot") >= 1
    second = sh(["dvc", "repro"], reproduced)
    assert "Running stage" not in second.stdout, second.stdout


def test_transfer_onto_its_own_data_repeats_the_tier_table(reproduced: Path) -> None:
    """ci_tiny's transfer target is its own data and sampling: the transfer stage rebuilds the
    golden set from the raw data alone and scores every tier on it, so its threshold-free
    figures must be the tier table's. The student alone is scored differently (its listings
    encoded from text by the exported fp32 tower, not read from the index), within 0.01."""
    transfer = json.loads((reproduced / "metrics" / "transfer.json").read_text())
    tiers = json.loads((reproduced / "metrics" / "tiers.json").read_text())
    assert (transfer["source"], transfer["target"]) == ("esci_us", "esci_us")
    assert (transfer["n_pairs"], transfer["n_queries"]) == (tiers["n_pairs"], tiers["n_queries"])
    assert set(transfer["tiers"]) == {"bm25", "minilm_zero_shot", "teacher", "student"}
    best, worst = tiers["labels"][0], tiers["labels"][-1]
    for name, row in transfer["tiers"].items():
        own = tiers["tiers"][name]["threshold_free"]
        tolerance = 0.01 if name == "student" else 1e-9
        for label in (best, worst):
            got, want = row["auc_vs_rest"][label], own["auc_vs_rest"][label]
            assert got["estimate"] == pytest.approx(want["estimate"], abs=tolerance), (name, label)
        assert row["ndcg_at_10"]["estimate"] == pytest.approx(
            own["ndcg_at_10"]["estimate"], abs=tolerance
        ), name
    page = (reproduced / "reports" / "index.html").read_text()
    assert "Transfer to another dataset" in page and "on the esci_us golden set" in page


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
    "conf default": ("conf/evaluation/default.yaml", "confidence: 0.95", "confidence: 0.9", {"evaluate", "transfer"}),
    "benchmark setting": ("conf/student/tiny_random.yaml", "teacher_pairs: 64", "teacher_pairs: 65", set()),
    "teacher default": (
        "conf/teacher/tiny_random.yaml", "bias_bootstrap: 30", "bias_bootstrap: 31",
        {"train_teacher", "teacher_label", "transfer", "monitor", "abtest"},  # the stages that list the teacher's params
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


def test_sweep_queues_and_runs_a_two_point_grid(reproduced: Path) -> None:
    sh(["git", "checkout", "-q", "--", "."], reproduced)
    sh([str(BIN / "relevance-kit"), "sweep", "conf/sweep/ci_two_point.yaml"], reproduced)
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], reproduced).stdout)
    tables = {}  # evaluation.confidence of each experiment -> its tier table
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                params = rev["data"]["params"]["params.yaml"]["data"]
                tiers = rev["data"]["metrics"]["metrics/tiers.json"]["data"]["tiers"]
                tables[params["evaluation"]["confidence"]] = tiers
    assert set(tables) == {0.95, 0.8}, tables.keys()
    # each point ran `evaluate` under its own setting (`dvc exp run -S evaluation.confidence=...`):
    # the same estimates, a narrower interval at 80 %
    for tier in tables[0.95]:
        wide, narrow = tables[0.95][tier]["macro_f1"], tables[0.8][tier]["macro_f1"]
        assert narrow["estimate"] == wide["estimate"], tier
        assert wide["low"] <= narrow["low"] <= narrow["high"] <= wide["high"], tier
    width = {
        c: tables[c]["bm25"]["macro_f1"]["high"] - tables[c]["bm25"]["macro_f1"]["low"]
        for c in tables
    }
    assert width[0.8] < width[0.95], width
    spread = json.loads((reproduced / "metrics" / "sweeps" / "ci_two_point.json").read_text())
    assert spread["grid"] == {"evaluation.confidence": [0.95, 0.8]}
    for tier in ("bm25", "teacher", "student"):
        f1 = spread["tiers"][tier]["macro_f1"]
        assert len(f1["values"]) == 2 and f1["sd"] == 0.0, (tier, f1)  # estimates do not move


# --- fault injection: interrupted training stages ------------------------------------------

LAST_EPOCH = {
    "train_teacher": "models/teacher/tiny_random/checkpoints/last.ckpt",
    "train_student": "models/student/tiny_random/runs/last.ckpt",
}
# Outputs that record how long a run took (or that it resumed): equal up to these keys.
TIMED = {"metrics/teacher_train.json", "metrics/train_student.json", "metrics/teacher_label.json",
         "dvclive/teacher/metrics.json", "dvclive/student/metrics.json"}  # fmt: skip
UNTIMED_KEYS = ("seconds", "per_second", "resumed", "timestamp")
LIVE_PLOTS = (
    "dvclive/teacher/plots",
    "dvclive/student/plots/metrics",
)  # per-step rows with wall-clock timestamps


def locked_outputs(root: Path) -> dict[str, str]:
    """Every stage output's hash as dvc.lock records it (timed files and live plots aside)."""
    import yaml

    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values() for out in stage.get("outs", [])
        if out["path"] not in TIMED and out["path"] not in LIVE_PLOTS
    }  # fmt: skip


def untimed(root: Path) -> dict[str, dict]:
    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: strip(v) for k, v in node.items() if not any(key in k for key in UNTIMED_KEYS)
            }
        return node

    return {
        name: strip(json.loads((root / name).read_text()))
        for name in sorted(TIMED)
        if (root / name).exists()
    }


def dvc_repro(root: Path, *args: str) -> subprocess.Popen[str]:
    """`dvc repro *args` started in its own process group (a terminal's foreground job),
    its output to `root/../repro.log` (a pipe nobody reads would fill and stall it)."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(root),
    }
    with (root.parent / "repro.log").open("a") as log:
        return subprocess.Popen(
            ["dvc", "repro", *args],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def repro_interrupted(root: Path, sig: signal.Signals, stage: str, *args: str) -> None:
    """`dvc repro *args`, sent `sig` (to its whole process group, as Ctrl+C or a crash does)
    once `stage` has finished an epoch and is into the next; it must not complete."""
    proc = dvc_repro(root, *args)
    marker, deadline = root / LAST_EPOCH[stage], time.monotonic() + 1200
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a partial epoch, which the rerun must redo
    os.killpg(proc.pid, sig)
    proc.wait(timeout=300)
    assert proc.returncode != 0, (
        f"dvc repro finished before {sig.name} reached {stage}: {root.parent / 'repro.log'}"
    )
    import torch

    epoch = torch.load(marker, map_location="cpu", weights_only=False)["epoch"]
    assert epoch < 3, f"{stage} interrupted after its last epoch ({epoch}): nothing left to resume"


def test_interrupted_training_stages_rerun_to_the_uninterrupted_outputs(
    reproduced: Path, tmp_path: Path
) -> None:
    """A second cold run, in another folder, is interrupted in each training stage once by
    SIGINT and once by SIGKILL; every rerun to the end gives the outputs (dvc.lock hashes)
    of the uninterrupted cold run `reproduced`. ci_tiny trains 8 epochs: the signal arrives
    early in epoch 2, so 6 are still to run."""
    sh(["git", "checkout", "-q", "--", "."], reproduced)
    expected, expected_untimed = locked_outputs(reproduced), untimed(reproduced)
    assert (
        "models/teacher/tiny_random" in expected
        and "models/student/tiny_random/student.ckpt" in expected
    )
    assert not (reproduced / "models/teacher/tiny_random/checkpoints").exists(), (
        "finished: no resume"
    )
    assert not list((reproduced / "models/student/tiny_random/runs").glob("*.ckpt"))
    faulty = git_copy(tmp_path, ["experiment=ci_tiny"])
    repro_interrupted(faulty, signal.SIGINT, "train_teacher")  # cold: Ctrl+C in the teacher
    repro_interrupted(faulty, signal.SIGKILL, "train_student")  # the teacher resumes; a crash
    assert "resuming the interrupted teacher run" in (faulty.parent / "repro.log").read_text()
    cycles = [  # forced reruns over finished runs
        (signal.SIGKILL, "train_teacher", ("-f", "-s", "train_teacher")),
        (signal.SIGINT, "train_student", ("-f", "-s", "train_student")),
    ]
    for sig, stage, args in [(None, "train_student", ()), *cycles]:
        if sig is not None:
            repro_interrupted(faulty, sig, stage, *args)
        rerun = sh(["dvc", "repro"], faulty).stdout
        what = stage.removeprefix("train_")
        assert f"resuming the interrupted {what} run" in rerun, f"{stage} did not resume: {rerun}"
        assert locked_outputs(faulty) == expected, f"after {sig} in {stage} {args}"
        assert untimed(faulty) == expected_untimed, f"after {sig} in {stage} {args}"
        assert (
            "Running stage" not in sh(["dvc", "repro"], faulty).stdout
        )  # and DVC agrees it is up to date

"""Issue 13, training runs: the teacher and student stages, run as DVC runs them on the real
ci_tiny data, give byte-identical models from two cold runs, from a forced rerun after a
finished run, and from a run interrupted (SIGINT or SIGKILL) and rerun to the end."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, run_stage, write_project

pytestmark = pytest.mark.slow

TEACHER = Path("models/teacher/tiny_random")
STUDENT = Path("models/student/tiny_random")
EPOCHS = 25  # enough that a quiet machine is still training when the signal arrives


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, esci_dir: Path) -> Path:
    """ci_tiny up to the annotator's labels; teacher and student train for a few epochs (the
    student on the annotator's labels, so it needs no teacher here)."""
    edits = {
        "teacher.epochs": EPOCHS,
        "student.epochs": EPOCHS,
        "student.targets": "data/annotations/judgments.parquet",
    }
    project = write_project(
        tmp_path_factory.mktemp("resume") / "project", ["experiment=ci_tiny"], edits
    )
    for stage in ("prepare", "sample", "golden", "validate_annotator", "annotate"):
        done = run_stage(stage, project)
        assert done.returncode == 0, f"{stage}: {done.stderr[-2000:]}"
    return project


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def train(stage: str, root: Path) -> subprocess.CompletedProcess[str]:
    done = run_stage(stage, root)
    assert done.returncode == 0, f"{stage}: {done.stderr[-3000:]}"
    return done


def interrupt(stage: str, root: Path, sig: signal.Signals, after: Path) -> None:
    """Start the stage and send `sig` once `after` exists (an epoch is done) and the next
    epoch is under way; the stage must not finish."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "stages" / f"{stage}.py")],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (root / after).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch: a partial epoch that must be redone, not resumed
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, (
        f"{stage} finished before {sig.name} arrived; raise EPOCHS\n{out[-2000:]}"
    )
    epoch = torch.load(root / after, map_location="cpu", weights_only=False)["epoch"]
    assert epoch < EPOCHS - 1, f"interrupted after its last epoch ({epoch}): nothing left to resume"


def test_teacher_cold_forced_and_interrupted_runs_give_the_same_model(root: Path) -> None:
    train("train_teacher", root)
    first = digests(root / TEACHER)
    assert "decision.json" in first and any(name.startswith("export/") for name in first)
    assert not (root / TEACHER / "checkpoints").exists(), "a finished run leaves nothing to resume"
    shutil.rmtree(root / TEACHER)
    train("train_teacher", root)  # a second cold run
    assert digests(root / TEACHER) == first
    train("train_teacher", root)  # forced rerun over a finished run
    assert digests(root / TEACHER) == first
    for sig in (signal.SIGINT, signal.SIGKILL):
        interrupt("train_teacher", root, sig, TEACHER / "checkpoints" / "last.ckpt")
        resumed = train("train_teacher", root)
        assert "resuming the interrupted teacher run" in resumed.stdout, resumed.stdout[-2000:]
        assert digests(root / TEACHER) == first, (
            f"resumed after {sig.name} differs from the uninterrupted run"
        )


def test_student_cold_forced_and_interrupted_runs_give_the_same_model(root: Path) -> None:
    train("train_student", root)
    ckpt = root / STUDENT / "student.ckpt"
    first = hashlib.md5(ckpt.read_bytes()).hexdigest()
    assert (root / STUDENT / "runs" / "COMPLETE").exists() and not list(
        (root / STUDENT / "runs").glob("*.ckpt")
    )
    forced = train("train_student", root)  # `dvc repro -f -s train_student` after a finished run
    assert (
        "resuming" not in forced.stdout
        and (root / "dvclive" / "student" / "plots" / "metrics").is_dir()
    )
    assert hashlib.md5(ckpt.read_bytes()).hexdigest() == first
    shutil.rmtree(root / STUDENT)
    train("train_student", root)  # a second cold run
    assert hashlib.md5(ckpt.read_bytes()).hexdigest() == first
    for sig in (signal.SIGINT, signal.SIGKILL):
        interrupt("train_student", root, sig, STUDENT / "runs" / "last.ckpt")
        resumed = train("train_student", root)
        assert "resuming the interrupted student run" in resumed.stdout, resumed.stdout[-2000:]
        assert hashlib.md5(ckpt.read_bytes()).hexdigest() == first, (
            f"resumed after {sig.name} differs"
        )

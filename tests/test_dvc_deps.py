"""dvc.yaml's code dependencies are derived, not remembered: the import closure of each
`stages/<name>.py` inside relevance_kit/ (read with `ast`, so lazy imports inside functions
count too) must be exactly what the stage lists, so that editing a module reruns exactly the
stages that run it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PACKAGE = "relevance_kit"
# The config package parses and validates params.yaml. Its settings reach a stage only
# through params.yaml, which holds every field with its value (test_config proves validation
# fills nothing in), so DVC tracks them as params; listing config/ as code would rerun every
# stage whenever a field is added. Its own imports serve validation only and are not followed.
CONFIG_PACKAGE = "relevance_kit/config/"


def is_config(file: str) -> bool:
    return file.startswith(CONFIG_PACKAGE)


STAGES = sorted(p.stem for p in (REPO / "stages").glob("*.py"))


def module_file(name: str) -> Path | None:
    """`relevance_kit.a.b` -> relevance_kit/a/b.py or relevance_kit/a/b/__init__.py."""
    base = REPO / Path(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.exists()), None)


def imported_modules(path: Path, name: str) -> set[str]:
    """The relevance_kit modules `path` (module `name`) imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = name.split(".")[: None if path.name == "__init__.py" else -1]
                module = ".".join(
                    package[: len(package) - node.level + 1] + ([module] if module else [])
                )
            found |= {
                module,
                *(f"{module}.{alias.name}" for alias in node.names),
            }  # `from pkg import submodule`
    return {m for m in found if m.split(".")[0] == PACKAGE and module_file(m) is not None}


def import_closure(script: Path) -> set[str]:
    """Files (relative to the repo) of every relevance_kit module `script` runs: what it
    imports, transitively, with each package's __init__.py on the way."""
    seen: set[str] = set()
    todo = list(imported_modules(script, "__main__"))
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in seen:
                continue
            seen.add(name)
            path = module_file(name)
            if not is_config(path.relative_to(REPO).as_posix()):
                todo += imported_modules(path, name)
    return {module_file(m).relative_to(REPO).as_posix() for m in seen}


def python_files(dep: str) -> set[str]:
    path = REPO / dep
    files = [path] if path.is_file() else path.rglob("*.py")
    return {p.relative_to(REPO).as_posix() for p in files if "__pycache__" not in p.parts}


def expected_code_deps(stage: str) -> list[str]:
    """The shortest dep list covering exactly the closure: a subpackage folder when the
    stage runs all of it, else its files."""
    closure = {f for f in import_closure(REPO / "stages" / f"{stage}.py") if not is_config(f)}
    deps = {f"stages/{stage}.py"}
    for file in closure:
        parts = file.split("/")
        folder = next(
            (
                ("/".join(parts[:i]))
                for i in range(2, len(parts))
                if python_files("/".join(parts[:i])) <= closure
            ),
            None,
        )
        deps.add(folder or file)
    return sorted(deps)


def listed_code_deps(stage: str) -> list[str]:
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage].get("deps", [])
    return sorted(
        d.rstrip("/")
        for d in deps
        if d.startswith((f"{PACKAGE}/", f"{PACKAGE}.", "stages/")) or d == PACKAGE
    )


@pytest.mark.parametrize("stage", STAGES)
def test_stage_lists_exactly_its_import_closure(stage: str) -> None:
    closure = import_closure(REPO / "stages" / f"{stage}.py") | {f"stages/{stage}.py"}
    listed = listed_code_deps(stage)
    covered = set().union(*(python_files(d) for d in listed))
    missing = sorted(f for f in closure - covered if not is_config(f))
    extra = sorted(covered - closure)
    assert not missing and not extra, (
        f"dvc.yaml stage {stage!r}: deps miss {missing} (the stage imports them) and list {extra} "
        f"(it never imports them). Its code deps should be:\n"
        + "\n".join(f"      - {d}" for d in expected_code_deps(stage))
    )


def test_every_stage_script_is_a_dvc_stage() -> None:
    assert set(STAGES) == set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def test_stages_run_the_code_of_the_project_they_run_in(tmp_path: Path) -> None:
    """`python -m stages.<name>` puts the project folder first on sys.path; `python
    stages/<name>.py` puts stages/ there, and relevance_kit then comes from wherever it is
    installed. A queued `dvc exp run` runs in a copy under .dvc/tmp/exps/: with an editable
    install the second form ran the workspace's code as it was when the stage started (an
    edit during a sweep broke every later point), while DVC hashed the copy's."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert {name: s["cmd"] for name, s in stages.items()} == {
        name: f"python -m stages.{name}" for name in STAGES
    }
    (tmp_path / "stages").symlink_to(REPO / "stages")
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "__init__.py").write_text("import sys; print(__file__); sys.exit(3)\n")
    done = subprocess.run(
        [sys.executable, "-m", "stages.prepare"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert done.returncode == 3 and done.stdout.strip() == str(tmp_path / PACKAGE / "__init__.py")


def test_closure_follows_lazy_and_package_imports(tmp_path: Path) -> None:
    """The scanner itself: a function-level import (integrate.scorers loads the student's
    scorer lazily), `from package import module`, and each package's __init__ all count."""
    closure = import_closure(REPO / "stages" / "integrate.py")
    assert {
        "relevance_kit/__init__.py",
        "relevance_kit/student/__init__.py",
        "relevance_kit/student/scorer.py",
    } <= closure
    script = tmp_path / "probe.py"
    script.write_text("def f():\n    from relevance_kit.data import sources\n")
    assert {
        "relevance_kit/__init__.py",
        "relevance_kit/data/__init__.py",
        "relevance_kit/data/sources.py",
    } <= import_closure(script)
    assert "relevance_kit/data/esci.py" not in import_closure(script)


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_runs_a_benchmark(stage: str) -> None:
    """bench/ lies outside the package: neither the stage script nor any module of its
    closure imports it, so editing a benchmark reruns no stage (and none lists it)."""
    script = REPO / "stages" / f"{stage}.py"
    files = [script, *(REPO / f for f in import_closure(script))]
    importers = sorted(
        path.relative_to(REPO).as_posix()
        for path in files
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (
            isinstance(node, ast.Import)
            and any(a.name.split(".")[0] == "bench" for a in node.names)
        )
        or (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and (node.module or "").split(".")[0] == "bench"
        )
    )
    assert not importers, f"stage {stage!r} imports bench/ through {importers}"
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage].get("deps", [])
    assert not [d for d in deps if d.startswith("bench")]


# Student settings that do not change the trained checkpoint: export and service settings are
# read by export_student from params.yaml (not from the checkpoint); bench settings by no stage.
NOT_TRAINING = {"export", "service", "bench"}


def test_train_student_lists_every_training_setting_and_no_serving_one() -> None:
    from relevance_kit.config import StudentConfig

    params = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train_student"]["params"]
    listed = {p.removeprefix("student.") for p in params if p.startswith("student.")}
    assert "student" not in params and listed == set(StudentConfig.model_fields) - NOT_TRAINING

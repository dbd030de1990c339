"""Issue 13, mistaken runs: each test reproduces a fault a new user hit (exact command) and
checks the behaviour now promised: a clear error naming what and where, exit 2, and nothing
overwritten or half-done."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from relevance_kit import cli
from relevance_kit.config import compose_raw, validate
from relevance_kit.errors import ConfigError
from tests.conftest import REPO, run_stage

CONF = REPO / "conf"


def _cli(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str]:
    """`relevance-kit <argv>` run in `root` (cwd, as a user runs it): (exit status, stderr)."""
    monkeypatch.chdir(root)
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "override, named",
    [
        ("+sampling.max_querys=5", "sampling.max_querys: unknown key"),
        ("sampling.max_queries=abc", "sampling.max_queries = 'abc'"),
        ("seed=1.5", "seed = 1.5"),
        ("trainer.strategy=deepspeed", "trainer.strategy = 'deepspeed'"),
    ],
)
def test_compose_with_an_invalid_override_leaves_params_yaml_unchanged(
    project, monkeypatch, capsys, override: str, named: str
) -> None:
    root = project()
    before = (root / "params.yaml").read_bytes()
    code, err = _cli(root, monkeypatch, capsys, "compose", override)
    assert code == 2 and named in err, err
    assert (root / "params.yaml").read_bytes() == before
    assert not list(root.glob(".params.yaml.*")), "no temporary file left behind"


def test_compose_writes_a_valid_config(project, monkeypatch, capsys) -> None:
    root = project()
    (root / "params.yaml").unlink()
    code, err = _cli(root, monkeypatch, capsys, "compose", "experiment=ci_tiny", "seed=7")
    assert code == 0, err
    assert yaml.safe_load((root / "params.yaml").read_text())["seed"] == 7


def test_missing_api_key_is_reported_by_validate_and_before_any_stage_works(
    project, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    root = project(["experiment=ci_tiny", "annotator=o3"])
    code, err = _cli(root, monkeypatch, capsys, "validate")
    assert code == 2 and "OPENAI_API_KEY" in err and "annotator.api_key_env" in err, err
    done = run_stage("prepare", root)  # the first stage of `dvc repro`: stops before any work
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr, done.stderr
    assert not (root / "data").exists()


def test_a_set_api_key_is_never_printed(project, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    root = project(["experiment=ci_tiny", "annotator=o3"])
    code, err = _cli(root, monkeypatch, capsys, "validate")
    assert code == 0, err
    assert "sk-secret" not in err + capsys.readouterr().out


def test_a_negative_split_size_names_every_allowed_form() -> None:
    raw = compose_raw(["experiment=ci_tiny", "sampling.splits.golden=-3"], CONF)
    with pytest.raises(ConfigError) as caught:
        validate(raw, CONF)
    message = str(caught.value)
    assert "sampling.splits.golden" in message and "-3" in message
    for form in ("count of queries > 0", "fraction", "(0, 1)", "'rest'"):
        assert form in message, message


@pytest.mark.parametrize("size", ["0.25", "4", "rest"])
def test_every_allowed_split_size_form_validates(size: str) -> None:
    raw = compose_raw(
        ["experiment=ci_tiny", f"sampling.splits.golden={size}", "sampling.splits.unlabeled=0.5"],
        CONF,
    )
    assert validate(raw, CONF).sampling.splits["golden"] == yaml.safe_load(size)


def test_split_counts_above_max_queries_fail_validation() -> None:
    raw = compose_raw(["experiment=ci_tiny", "sampling.splits.golden=40"], CONF)
    with pytest.raises(ConfigError, match=r"need 46 queries, more than max_queries = 12"):
        validate(raw, CONF)


def test_validate_checks_split_sizes_against_the_prepared_query_set(
    project, monkeypatch, capsys
) -> None:
    root = project(
        [
            "experiment=ci_tiny",
            "sampling.max_queries=null",
            "sampling.splits.golden=6",
            "sampling.splits.annotate=4",
        ]
    )
    prepared = root / "data" / "prepared"
    prepared.mkdir(parents=True)
    pd.DataFrame({"query_id": [f"q{i}" for i in range(9)], "text": ["red scarf"] * 9}).to_parquet(
        prepared / "queries.parquet"
    )
    code, err = _cli(root, monkeypatch, capsys, "validate")
    assert code == 2, err
    assert (
        "sampling.splits" in err
        and "need 12 queries; only 9 available" in err
        and "queries.parquet has 9 queries" in err
    ), err
    pd.DataFrame({"query_id": [f"q{i}" for i in range(30)], "text": ["red scarf"] * 30}).to_parquet(
        prepared / "queries.parquet"
    )
    code, err = _cli(root, monkeypatch, capsys, "validate")
    assert code == 0, err

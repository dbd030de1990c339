"""Issue 13: `python -m relevance_kit.monitor run --log` on a broken request log stops with
exit 2 naming the file, and the row and column where one is at fault; nothing is written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from relevance_kit.monitor.__main__ import main
from relevance_kit.monitor.requests import read_request_log


def _log(listing_ids: list[object], query: object = "red shoes") -> pd.DataFrame:
    n = len(listing_ids)
    return pd.DataFrame({
        "timestamp": [pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=i) for i in range(n)],
        "request_id": [f"r{i}" for i in range(n)], "query": [query] * n, "listing_ids": listing_ids,
    })  # fmt: skip


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path)
    return path


def _run(root: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["--params", str(root / "params.yaml"), "run", "--log", str(log), "--series", str(root / "series.parquet")])
    assert exit_.value.code == 2
    assert not (root / "series.parquet").exists()
    return capsys.readouterr().err


def test_missing_empty_and_non_parquet_files_are_named(project, capsys) -> None:
    root = project()
    assert "missing.parquet: request log not found" in _run(root, root / "missing.parquet", capsys)
    (root / "empty.parquet").write_bytes(b"")
    assert "empty.parquet: request log is an empty (0-byte) file" in _run(root, root / "empty.parquet", capsys)
    _log([["a"], ["b"]]).to_csv(root / "csv.parquet", index=False)
    err = _run(root, root / "csv.parquet", capsys)
    assert "csv.parquet: not a readable parquet file" in err and "must be parquet" in err, err


@pytest.mark.parametrize(
    "frame, named",
    [
        (_log([[], [], []]), "column listing_ids: no request of day(s) ['2026-01-01'] showed any listing"),
        (_log(["L1, L2", "L3"]), "row 0: column listing_ids = 'L1, L2': expected a list of listing ids, got str"),
        (_log([["L1"], None]), "row 1: column listing_ids = None"),
        (_log([["L1"], ["L2", None]]), "row 1: column listing_ids = ['L2', None]"),
        (_log([]), "the log has no requests (0 rows)"),
        (_log([["L1"], ["L2"]], query=None), "row 0: column query = None: expected a non-empty string"),
    ],
)
def test_bad_values_name_the_row_and_column(project, capsys, tmp_path: Path, frame: pd.DataFrame, named: str) -> None:
    root = project()
    log = _write(frame, tmp_path / "log.parquet")
    err = _run(root, log, capsys)
    assert str(log) in err and named in err, err


def test_a_good_log_still_reads() -> None:
    out = read_request_log(_log([["L1", "L2"], []]))
    assert out["day"].nunique() == 1 and out["query_id"].tolist() == ["red shoes", "red shoes"]

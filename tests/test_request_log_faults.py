"""Issue 13: `python -m relevance_kit.monitor run --log` on a broken request log stops with
exit 2 naming the file, and the row and column where one is at fault; nothing is written.
The log is slot-level (relevance_kit.monitor.log_format): one row per shown listing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from relevance_kit.errors import DataError
from relevance_kit.monitor.__main__ import main
from relevance_kit.monitor.log_format import read_request_log


def _log(listing_ids: list[object], query: object = "red shoes") -> pd.DataFrame:
    """Two requests of one day, each showing `listing_ids` in order."""
    rows = [
        {"date": "2026-01-01", "request_id": f"r{r}", "query": query, "listing_id": lid, "position": pos}
        for r in range(2) for pos, lid in enumerate(listing_ids, start=1)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["date", "request_id", "query", "listing_id", "position"])


def _run(root: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--params",
                str(root / "params.yaml"),
                "run",
                "--log",
                str(log),
                "--series",
                str(root / "series.parquet"),
            ]
        )
    assert exit_.value.code == 2
    assert not (root / "series.parquet").exists()
    return capsys.readouterr().err


def test_missing_empty_and_non_parquet_files_are_named(project, capsys) -> None:
    root = project()
    assert "missing.parquet: request log not found" in _run(root, root / "missing.parquet", capsys)
    (root / "empty.parquet").write_bytes(b"")
    assert "empty.parquet: request log is an empty (0-byte) file" in _run(
        root, root / "empty.parquet", capsys
    )
    _log(["a", "b"]).to_csv(root / "csv.parquet", index=False)
    err = _run(root, root / "csv.parquet", capsys)
    assert "csv.parquet: not a readable Parquet file" in err and "must be Parquet" in err, err


@pytest.mark.parametrize(
    "frame, named",
    [
        (_log([]), "the log has no requests (0 rows)"),
        (_log(["L1", None]), "row 1: column 'listing_id' = None is null"),
        (_log(["L1", ""]), "row 1: column 'listing_id' = '' is empty"),
        (_log(["L1", "L2"], query=None), "row 0: column 'query' = None is null"),
        (_log(["L1", "L2"]).drop(columns="position"), "missing column(s) ['position']"),
    ],
)
def test_bad_values_name_the_row_and_column(
    project, capsys, tmp_path: Path, frame: pd.DataFrame, named: str
) -> None:
    root = project()
    log = tmp_path / "log.parquet"
    frame.to_parquet(log)
    err = _run(root, log, capsys)
    assert str(log) in err and named in err, err


def test_a_listing_id_that_is_not_a_string_is_refused() -> None:
    """A list where one listing id belongs (the old one-row-per-request shape): Parquet cannot
    mix the two in one column, so the in-memory frame is checked."""
    with pytest.raises(
        DataError, match=r"row 1: column 'listing_id' = \['L2', 'L3'\] is not a string"
    ):
        read_request_log(_log(["L1", ["L2", "L3"]]))


def test_a_good_log_still_reads() -> None:
    out = read_request_log(_log(["L1", "L2"]))
    assert out["day"].nunique() == 1 and out["listing_ids"].tolist() == [["L1", "L2"], ["L1", "L2"]]

"""The request log contract: what live search showed, one row per shown slot (Parquet).

    date        date | str | timestamp   the day the request was served (UTC; ISO strings ok)
    request_id  str                      one search request
    query       str                      the query text as the buyer typed it
    listing_id  str                      the listing shown in this slot
    position    int                      1-based slot of the listing in the result list
    variant     str (optional)           the A/B variant that served the request
    query_id    str (optional)           defaults to the query text

A request's rows share its date, query (and variant); positions are unique within it. The
column names are `relevance_kit.schemas.REQUEST_LOG_*`; this module checks the rows.
`read_request_log` checks all of that, naming the column and the row of the first fault,
and returns one row per request (`day`, `request_id`, `query`, `query_id`, `listing_ids`
best first[, `variant`]), the shape the monitor and the A/B analysis work on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relevance_kit.errors import DataError
from relevance_kit.schemas import (
    REQUEST_LOG_COLUMNS,
    REQUEST_LOG_OPTIONAL,
    REQUEST_LOG_PER_REQUEST,
    require_columns,
)


def load_request_log(path: Path) -> pd.DataFrame:
    """Read and validate the request log Parquet at `path`; a missing, empty or non-Parquet
    file is an error naming it, not a traceback."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: request log not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: request log is an empty (0-byte) file, not a Parquet file")
    try:
        log = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({exc}); the request log must be Parquet"
        ) from None
    return read_request_log(log, str(path))


def read_request_log(log: pd.DataFrame, where: str = "request log") -> pd.DataFrame:
    """Validate a slot-level request log and fold it into one row per request."""
    require_columns(log, REQUEST_LOG_COLUMNS, where)
    if log.empty:
        raise DataError(f"{where}: the log has no requests (0 rows)")
    log = log.reset_index(drop=True)
    present = REQUEST_LOG_COLUMNS + [c for c in REQUEST_LOG_OPTIONAL if c in log.columns]
    for column in present:
        _no_nulls(log, column, where)
    for column in (
        "request_id",
        "query",
        "listing_id",
        *(c for c in REQUEST_LOG_OPTIONAL if c in log.columns),
    ):
        _strings(log, column, where)
    position = pd.to_numeric(log["position"], errors="coerce")
    bad = position.isna() | (position < 1) | (position != np.floor(position))
    _fail_first(bad, log, "position", where, "is not a 1-based integer position")
    days = pd.to_datetime(log["date"], utc=True, errors="coerce", format="ISO8601")
    _fail_first(days.isna(), log, "date", where, "is not a date")
    frame = log.assign(position=position.astype(int), date=days.dt.date)
    if "query_id" not in frame.columns:
        frame["query_id"] = frame["query"]
    _fail_first(
        frame.duplicated(["request_id", "position"]),
        frame,
        "position",
        where,
        "repeats a position within its request",
    )
    _fail_first(
        frame.duplicated(["request_id", "listing_id"]),
        frame,
        "listing_id",
        where,
        "repeats a listing within its request",
    )
    for column in [c for c in REQUEST_LOG_PER_REQUEST if c in frame.columns]:
        varies = frame.groupby("request_id")[column].transform("nunique") > 1
        _fail_first(varies, frame, column, where, "differs between rows of the same request_id")
    return _per_request(frame)


def _per_request(frame: pd.DataFrame) -> pd.DataFrame:
    ordered = frame.sort_values(["request_id", "position"], kind="stable")
    keys = [c for c in REQUEST_LOG_PER_REQUEST if c in ordered.columns]
    folded = ordered.groupby("request_id", sort=False).agg(
        **{c: (c, "first") for c in keys}, listing_ids=("listing_id", list)
    )  # fmt: skip
    return folded.reset_index().rename(columns={"date": "day"})


def _no_nulls(log: pd.DataFrame, column: str, where: str) -> None:
    _fail_first(log[column].isna(), log, column, where, "is null")


def _strings(log: pd.DataFrame, column: str, where: str) -> None:
    values = log[column]
    not_text = ~values.map(lambda v: isinstance(v, str))
    _fail_first(not_text, log, column, where, "is not a string")
    _fail_first(values.str.strip() == "", log, column, where, "is empty")


def _fail_first(bad: pd.Series, log: pd.DataFrame, column: str, where: str, what: str) -> None:
    if bool(bad.any()):
        row = int(np.flatnonzero(bad.to_numpy())[0])
        value = log[column].iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataError(f"{where}: row {row}: column {column!r} = {value!r} {what}")

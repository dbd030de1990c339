"""Request logs: what live search showed. One row per request (parquet):

    timestamp    timestamp (UTC)   when the request was served
    request_id   str
    query        str               the query text
    query_id     str (optional)    defaults to the query text
    listing_ids  list[str]         the shown listings, best first

`simulate_request_log` builds one from the data: random queries served the popularity
baseline's top-k each day, with a regression injected from a given day on (a share of shown
slots replaced by random catalogue listings, as a broken index would).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relevance_kit.errors import DataError
from relevance_kit.schemas import require_columns

REQUEST_COLUMNS = ["timestamp", "request_id", "query", "listing_ids"]


def load_request_log(path: Path) -> pd.DataFrame:
    """Read and validate the request log parquet at `path`; a missing, empty or non-parquet
    file is an error naming it, not a traceback."""
    if not path.is_file():
        raise DataError(f"{path}: request log not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: request log is an empty (0-byte) file, not a parquet file")
    try:
        log = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc}); the request log must be parquet") from None
    return read_request_log(log, str(path))


def read_request_log(log: pd.DataFrame, where: str = "request log") -> pd.DataFrame:
    """Validate a request log and add `day` (UTC date) and `query_id` when absent."""
    require_columns(log, REQUEST_COLUMNS, where)
    if log.empty:
        raise DataError(f"{where}: the log has no requests (0 rows)")
    for column in ("request_id", "query"):
        _require_text(log[column], column, where)
    _require_listing_lists(log["listing_ids"], where)
    if log["request_id"].duplicated().any():
        row = int(np.flatnonzero(log["request_id"].duplicated())[0])
        raise DataError(f"{where}: row {row}: duplicate request_id {log['request_id'].iloc[row]!r}")
    stamps = pd.to_datetime(log["timestamp"], utc=True, errors="coerce")
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna())[0])
        raise DataError(f"{where}: row {row}: timestamp {log['timestamp'].iloc[row]!r} is not a time")
    out = log.copy()
    out["day"] = stamps.dt.date
    if "query_id" not in out.columns:
        out["query_id"] = out["query"]
    _require_text(out["query_id"], "query_id", where)
    shown = out["listing_ids"].map(len) > 0
    blank = sorted(set(out["day"]) - set(out.loc[shown, "day"]))
    if blank:
        raise DataError(
            f"{where}: column listing_ids: no request of day(s) {[d.isoformat() for d in blank[:5]]} "
            "showed any listing (every list is empty): nothing to measure on those days"
        )
    return out


def _require_text(column: pd.Series, name: str, where: str) -> None:
    """Every value a non-empty string (a null or blank query cannot be scored)."""
    bad = ~column.map(lambda v: isinstance(v, str) and bool(v.strip()))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{where}: row {row}: column {name} = {column.iloc[row]!r}: expected a non-empty string")


def _require_listing_lists(column: pd.Series, where: str) -> None:
    """Every value a list of listing id strings (a string is not a list: iterating it would
    count its characters as listings)."""
    for row, value in enumerate(column):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray)):
            raise DataError(
                f"{where}: row {row}: column listing_ids = {value!r}: expected a list of listing ids, "
                f"got {type(value).__name__}"
            )
        if not all(isinstance(item, str) and item for item in value):
            raise DataError(f"{where}: row {row}: column listing_ids = {list(value)!r}: every listing id must be a non-empty string")


def simulate_request_log(
    rankings: Mapping[str, Sequence[str]],
    query_text: Mapping[str, str],
    catalogue: Sequence[str],
    *,
    start_date: date,
    days: int,
    requests_per_day: int,
    regression_day: int | None,
    regression_share: float,
    seed: int,
) -> pd.DataFrame:
    """`requests_per_day` requests a day for `days` days; each shows the ranking of a random
    query (`rankings`: query_id -> shown listing ids); from `regression_day` on, each shown
    slot is replaced with probability `regression_share` by a random catalogue listing."""
    rng = np.random.default_rng(seed)
    query_ids = sorted(rankings)
    catalogue = np.asarray(catalogue)
    rows = []
    for d in range(days):
        day_start = pd.Timestamp(start_date, tz="UTC") + pd.Timedelta(days=d)
        broken = regression_day is not None and d >= regression_day
        for i, qid in enumerate(rng.choice(query_ids, size=requests_per_day)):
            shown = list(rankings[qid])
            if broken:
                for slot in np.flatnonzero(rng.random(len(shown)) < regression_share):
                    shown[slot] = _random_other(rng, catalogue, shown)
            rows.append({
                "timestamp": day_start + pd.Timedelta(seconds=int(rng.integers(0, 86_400))),
                "request_id": f"d{d:03d}-r{i:05d}", "query": query_text[qid], "query_id": qid,
                "listing_ids": shown,
            })  # fmt: skip
    return pd.DataFrame(rows)


def _random_other(rng: np.random.Generator, catalogue: np.ndarray, shown: list[str]) -> str:
    """A random catalogue listing not already shown (a list never repeats a listing)."""
    while True:
        pick = str(rng.choice(catalogue))
        if pick not in shown:
            return pick

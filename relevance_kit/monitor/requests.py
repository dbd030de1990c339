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

import numpy as np
import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.schemas import require_columns

REQUEST_COLUMNS = ["timestamp", "request_id", "query", "listing_ids"]


def read_request_log(log: pd.DataFrame, where: str = "request log") -> pd.DataFrame:
    """Validate a request log and add `day` (UTC date) and `query_id` when absent."""
    require_columns(log, REQUEST_COLUMNS, where)
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
    return out


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

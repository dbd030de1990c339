"""The daily relevance series: sample N requests of a day, label their shown listings with the
configured tier, append the day's summary. Idempotent: a day already in the series is never
labelled again nor duplicated, so a rerun (or a crash and restart) costs nothing twice."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from relevance_kit.integrate.results import request_metrics
from relevance_kit.integrate.scorers import PairScorer
from relevance_kit.schemas import METRICS, SERIES_COLUMNS


def day_sample(requests: pd.DataFrame, n: int, day: date | str, seed: int) -> pd.DataFrame:
    """Up to n requests of one day (or of one variant: `day` is then its name), drawn by a
    seed derived from it, so reruns draw the same."""
    tag = day.isoformat() if isinstance(day, date) else day
    day_seed = int.from_bytes(hashlib.sha256(f"{seed}:{tag}".encode()).digest()[:8], "little")
    if len(requests) <= n:
        return requests
    return requests.sample(n=n, random_state=np.random.RandomState(day_seed % 2**32))


def request_level(
    sampled: pd.DataFrame, scorer: PairScorer, gains: Mapping[str, float], k: int
) -> pd.DataFrame:
    """Per sampled request (request_id, query_id, arm = its variant or "live"): the metrics of
    its shown top-k under the tier's probabilities."""
    columns = [
        "request_id",
        "query_id",
        "listing_ids",
        *(["variant"] if "variant" in sampled else []),
    ]
    shown = (
        sampled[columns]
        .explode("listing_ids")
        .rename(columns={"listing_ids": "listing_id", "variant": "arm"})
    )
    shown = shown.dropna(subset=["listing_id"])
    shown["rank"] = shown.groupby("request_id").cumcount() + 1
    shown = shown[shown["rank"] <= k].reset_index(drop=True)
    probs = scorer.score_pairs(shown[["query_id", "listing_id"]]).drop(
        columns=["query_id", "listing_id"]
    )
    log = shown.join(probs)
    if "arm" not in log:
        log["arm"] = "live"
    return request_metrics(log, gains, k)


def day_summary(
    sampled: pd.DataFrame, scorer: PairScorer, gains: Mapping[str, float], k: int
) -> dict[str, float]:
    """Mean relevance metrics of the sampled requests' top-k under the tier's probabilities,
    with their standard errors over requests (`<metric>_se`)."""
    per_request = request_level(sampled, scorer, gains, k)[list(METRICS)]
    return {**per_request.mean().to_dict(), **per_request.sem().add_suffix("_se").to_dict()}


def update_series(
    series: pd.DataFrame,
    requests: pd.DataFrame,
    scorer: PairScorer,
    gains: Mapping[str, float],
    *,
    k: int,
    per_day: int,
    seed: int,
) -> tuple[pd.DataFrame, list[date]]:
    """Append a summary for each day of `requests` (a validated request log with `day`) that
    the series lacks; returns the series sorted by day and the days added."""
    done = set(pd.to_datetime(series["day"]).dt.date) if len(series) else set()
    rows, added = [], []
    for day, of_day in requests.groupby("day", sort=True):
        if day in done:
            continue
        sampled = day_sample(of_day, per_day, day, seed)
        rows.append({
            "day": day.isoformat(), "n_requests": len(of_day), "n_sampled": len(sampled),
            **day_summary(sampled, scorer, gains, k), "tier": scorer.tier,
        })  # fmt: skip
        added.append(day)
    if not rows:
        return series, added
    new = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    merged = pd.concat([series, new], ignore_index=True) if len(series) else new
    return merged.sort_values("day", ignore_index=True), added

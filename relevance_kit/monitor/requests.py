"""Simulated request logs in the contract of `relevance_kit.monitor.log_format` (one row per
shown slot): random queries served the popularity baseline's top-k each day, with a
regression injected from a given day on (a share of shown slots replaced by random catalogue
listings, as a broken index would) and, for an A/B test, each request served by a random
variant whose own share of slots is replaced the same way (a known injected effect).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd


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
    variants: Mapping[str, float] | None = None,
    id_prefix: str = "",
) -> pd.DataFrame:
    """`requests_per_day` requests a day for `days` days; each shows the ranking of a random
    query (`rankings`: query_id -> shown listing ids); from `regression_day` on, each shown
    slot is replaced with probability `regression_share` by a random catalogue listing.
    With `variants` (name -> share of slots it replaces), each request is served by a
    uniformly drawn variant, which replaces slots with its own share on top."""
    rng = np.random.default_rng(seed)
    query_ids = sorted(rankings)
    catalogue = np.asarray(catalogue)
    names = list(variants or {})
    rows = []
    for d in range(days):
        day = start_date + timedelta(days=d)
        broken = regression_share if regression_day is not None and d >= regression_day else 0.0
        for i, qid in enumerate(rng.choice(query_ids, size=requests_per_day)):
            variant = names[int(rng.integers(len(names)))] if names else None
            share = 1.0 - (1.0 - broken) * (1.0 - (variants[variant] if variant else 0.0))
            shown = list(rankings[qid])
            for slot in np.flatnonzero(rng.random(len(shown)) < share):
                shown[slot] = _random_other(rng, catalogue, shown)
            request = {
                "date": day,
                "request_id": f"{id_prefix}d{d:03d}-r{i:05d}",
                "query": query_text[qid],
                "query_id": qid,
            }
            if variant:
                request["variant"] = variant
            rows += [
                {**request, "listing_id": lid, "position": pos}
                for pos, lid in enumerate(shown, start=1)
            ]
    return pd.DataFrame(rows)


def _random_other(rng: np.random.Generator, catalogue: np.ndarray, shown: list[str]) -> str:
    """A random catalogue listing not already shown (a list never repeats a listing)."""
    while True:
        pick = str(rng.choice(catalogue))
        if pick not in shown:
            return pick

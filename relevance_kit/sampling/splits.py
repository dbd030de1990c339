"""Query-level splits: golden | annotate | teacher | unlabeled (names are the caller's).

Splitting by query, never by pair, keeps every judgment of a golden query out of training.
Each split is a stratified draw from the queries still free, so golden has the pools' mix of
query lengths and categories.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from relevance_kit.errors import ConfigError
from relevance_kit.sampling.allocation import draw, round_quotas, stratum_key
from relevance_kit.sampling.strata import QUERY_STRATA, query_strata
from relevance_kit.schemas import require_columns

REST = "rest"  # the size of the one split that takes the queries the others leave

SplitSize = int | float | Literal["rest"]


def resolve_sizes(sizes: Mapping[str, SplitSize], n: int) -> dict[str, int]:
    """Query counts per split, in the caller's order: ints are counts, floats fractions of `n`
    (largest-remainder rounding), and at most one split may be REST. Without REST the sizes
    must cover exactly `n`, so no query is left out of every split."""
    rest = [name for name, size in sizes.items() if size == REST]
    if len(rest) > 1:
        raise ConfigError(f"split sizes: only one split may be {REST!r}, got {rest}")
    fixed: dict[str, int] = {}
    fractions: dict[str, float] = {}
    for name, size in sizes.items():
        if name in rest:
            continue
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise ConfigError(f"split sizes: {name}={size!r}; use a count, a fraction or {REST!r}")
        if isinstance(size, int) and size >= 0:
            fixed[name] = size
        elif isinstance(size, float) and 0.0 <= size <= 1.0:
            fractions[name] = size * n
        else:
            raise ConfigError(
                f"split sizes: {name}={size!r}; counts must be >= 0 and fractions in [0, 1]"
            )
    wanted = sum(fixed.values()) + sum(fractions.values())
    if not rest and not math.isclose(wanted, n, abs_tol=1e-6):
        raise ConfigError(
            f"split sizes {dict(sizes)} cover {wanted:g} of {n} queries; "
            f"make them add up to {n} or give one split {REST!r}"
        )
    fraction_total = round(sum(fractions.values())) if rest else n - sum(fixed.values())
    rounded = round_quotas(np.array(list(fractions.values())), fraction_total)
    counts = fixed | dict(zip(fractions, rounded.tolist()))
    if rest:
        taken = sum(counts.values())
        if taken > n:
            raise ConfigError(f"split sizes {dict(sizes)} need {taken} queries; only {n} available")
        counts[rest[0]] = n - taken
    return {name: counts[name] for name in sizes}


def split_queries(
    queries: pd.DataFrame,
    judgments: pd.DataFrame,
    listings: pd.DataFrame,
    sizes: Mapping[str, SplitSize],
    seed: int,
    strata: Sequence[str] = QUERY_STRATA,
    max_queries: int | None = None,
    min_category_queries: int = 5,
) -> pd.DataFrame:
    """Assign every query (or a stratified subsample of `max_queries`, for tiny runs) to
    exactly one split. Returns query_id, split and the strata columns, sorted by query_id;
    the same seed and inputs give the same splits."""
    table = query_strata(queries, judgments, listings, min_category_queries)
    require_columns(table, list(strata), "query strata")
    keys = stratum_key(table, strata)
    rng = np.random.default_rng(seed)
    if max_queries is not None:
        kept = draw(keys, max_queries, rng)
        table, keys = table.iloc[kept].reset_index(drop=True), keys[kept]

    counts = resolve_sizes(sizes, len(table))
    split = np.full(len(table), None, dtype=object)
    for name in sorted(counts, key=lambda name: sizes[name] == REST):  # REST draws last
        chosen = draw(keys, counts[name], rng, available=pd.isna(split))
        split[chosen] = name
    return table.assign(split=split)[["query_id", "split", *strata]]


def check_split_sizes(
    sizes: Mapping[str, SplitSize], max_queries: int | None, queries_path: Path
) -> None:
    """Before any stage runs (`relevance-kit validate`): the split sizes must fit the query
    set where its size is known (the prepared queries exist); otherwise `sample` checks."""
    if not queries_path.exists():
        return
    n = pq.read_metadata(queries_path).num_rows
    used = n if max_queries is None else min(n, max_queries)
    try:
        resolve_sizes(sizes, used)
    except ConfigError as exc:
        capped = (
            f", capped by sampling.max_queries = {max_queries}"
            if max_queries is not None and max_queries < n
            else ""
        )
        raise ConfigError(
            f"sampling.splits: {exc} ({queries_path} has {n} queries{capped})"
        ) from None


def golden_pool(
    judged: pd.DataFrame, splits: pd.DataFrame, max_pairs_per_query: int | None, seed: int
) -> pd.DataFrame:
    """The judged pairs of the golden split's queries (one row per pair), at most
    `max_pairs_per_query` of each: a seeded draw, so a rerun keeps the same pairs."""
    golden = judged[judged["query_id"].isin(splits.loc[splits["split"] == "golden", "query_id"])]
    if not max_pairs_per_query:
        return golden
    return (
        golden.groupby("query_id")
        .sample(frac=1.0, random_state=seed)
        .groupby("query_id")
        .head(max_pairs_per_query)
    )


def first_queries(pairs: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """The pairs of `n` of the queries of `pairs` (all when `n` is None or covers them): the
    first `n` of one seeded permutation, so a smaller `n` keeps a subset of a larger one's."""
    queries = np.sort(pairs["query_id"].unique())
    if n is None or n >= len(queries):
        return pairs
    kept = np.random.default_rng(seed).permutation(queries)[:n]
    return pairs[pairs["query_id"].isin(kept)]

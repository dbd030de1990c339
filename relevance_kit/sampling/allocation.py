"""Proportional allocation of a budget across strata, and seeded draws that use it.

Query splits and pair samples share this code so both keep every stratum's share of the
population to within one unit (largest-remainder rounding), and both are reproducible from
a seed alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from relevance_kit.errors import ConfigError

ALL = "all"  # the single stratum when no stratum columns are given


def round_quotas(
    quotas: np.ndarray,
    total: int,
    *,
    lower: np.ndarray | int = 0,
    upper: np.ndarray | float = np.inf,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Integers within [lower, upper] that sum to `total` and stay as close to `quotas` as
    largest-remainder rounding allows. Ties are broken at random when `rng` is given, so no
    stratum wins by its position or name; without it, by position."""
    quotas = np.asarray(quotas, dtype=np.float64)
    counts = np.clip(np.floor(quotas), lower, upper).astype(np.int64)
    tie_order = rng.permutation(len(quotas)) if rng is not None else np.arange(len(quotas))
    while (diff := total - int(counts.sum())) != 0:
        gap = quotas - counts
        if diff > 0:  # give one more to the stratum furthest below its quota
            candidates = np.flatnonzero(counts < upper)
            ranked = np.lexsort((tie_order[candidates], -gap[candidates]))
        else:  # take one from the stratum furthest above its quota
            candidates = np.flatnonzero(counts > lower)
            ranked = np.lexsort((tie_order[candidates], gap[candidates]))
        counts[candidates[ranked[0]]] += 1 if diff > 0 else -1
    return counts


def allocate(
    sizes: Sequence[int] | np.ndarray, n: int, rng: np.random.Generator, *, min_one: bool = False
) -> np.ndarray:
    """Split a budget of `n` across strata in proportion to their `sizes`. With `min_one`,
    every non-empty stratum gets at least one unit when the budget covers them all, so small
    strata are not rounded out of the sample."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if n >= sizes.sum():
        return sizes.copy()
    lower = np.minimum(sizes, 1) if min_one and n >= np.count_nonzero(sizes) else 0
    return round_quotas(n * sizes / sizes.sum(), n, lower=lower, upper=sizes, rng=rng)


def stratum_key(frame: pd.DataFrame, strata: Sequence[str]) -> np.ndarray:
    """One readable label per row, e.g. 'label=relevant|category=Books' (ALL without strata)."""
    if not strata:
        return np.full(len(frame), ALL, dtype=object)
    parts = [f"{column}=" + frame[column].astype(str) for column in strata]
    return pd.concat(parts, axis=1).agg("|".join, axis=1).to_numpy(dtype=object)


def draw(
    keys: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    available: np.ndarray | None = None,
    min_one: bool = False,
) -> np.ndarray:
    """Row positions of a stratified random draw of `n` rows (all available rows when `n` is
    larger), proportional to each stratum's share of the available rows."""
    if n < 0:
        raise ConfigError(f"sample size must be >= 0, got {n}")
    positions = np.flatnonzero(available) if available is not None else np.arange(len(keys))
    groups = pd.Series(positions).groupby(keys[positions], sort=True).indices
    members = [positions[idx] for idx in groups.values()]
    counts = allocate([len(m) for m in members], n, rng, min_one=min_one)
    chosen = [rng.choice(m, size=c, replace=False) for m, c in zip(members, counts)]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)

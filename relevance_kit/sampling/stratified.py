"""Stratified random sampling of pairs under a budget.

Proportional allocation keeps the sample's mix of labels, categories and query lengths that
of the pool, and at least one pair per stratum (when the budget allows) keeps rare strata
visible to the annotator and in per-stratum metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from relevance_kit.sampling._validate import require_unique
from relevance_kit.sampling.allocation import draw, stratum_key
from relevance_kit.schemas import PAIR_KEY, require_columns

REASON = "sample_reason"  # why a pair was sampled: its stratum or a targeted rule's name


def stratified_sample(
    pairs: pd.DataFrame, strata: Sequence[str], n: int | None, seed: int
) -> pd.DataFrame:
    """`n` pairs (all when None or larger than the pool) drawn in proportion to the strata
    (columns of `pairs`, e.g. from `pair_features`), with REASON set to each pair's stratum,
    e.g. 'label=relevant|category=Books'. Rows keep the pool's order."""
    require_columns(pairs, [*PAIR_KEY, *strata], "stratified_sample pool")
    require_unique(pairs, PAIR_KEY, "stratified_sample pool")
    keys = stratum_key(pairs, strata)
    budget = len(pairs) if n is None else n
    chosen = draw(keys, budget, np.random.default_rng(seed), min_one=True)
    return pairs.iloc[chosen].assign(**{REASON: keys[chosen]}).reset_index(drop=True)

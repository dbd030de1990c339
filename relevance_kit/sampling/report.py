"""The sampling stage's metric: what went where, and proof that no query is in two splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import pandas as pd

from relevance_kit.sampling.stratified import REASON
from relevance_kit.sampling.targeted import TargetRule
from relevance_kit.schemas import require_columns


def sampling_report(
    splits: pd.DataFrame,
    pairs: Mapping[str, pd.DataFrame],
    rules: Sequence[TargetRule] = (),
) -> dict[str, Any]:
    """Counts per split (queries, pairs, query strata, sample reasons), pairs per targeted
    rule (zero included, so a rule that found nothing shows), and leakage: for every two
    splits, the query ids both hold, from the split table and the pair tables together.
    `pairs` maps a split name to its pair table (golden pairs, annotate sample, candidates)."""
    require_columns(splits, ["query_id", "split"], "splits")
    names = list(dict.fromkeys([*splits["split"], *pairs]))
    strata = [c for c in splits.columns if c not in ("query_id", "split")]
    held: dict[str, set[str]] = {}
    per_split: dict[str, Any] = {}
    for name in names:
        assigned = splits[splits["split"] == name]
        sample = pairs.get(name, pd.DataFrame(columns=["query_id"]))
        held[name] = set(assigned["query_id"]) | set(sample["query_id"])
        per_split[name] = {
            "queries": len(assigned),
            "pairs": len(sample),
            "query_strata": {c: _counts(assigned[c]) for c in strata},
            "sample_reasons": _counts(sample[REASON]) if REASON in sample else {},
        }
    leakage = {f"{a}&{b}": sorted(held[a] & held[b]) for a, b in combinations(names, 2)}
    reasons = pd.concat(
        [pd.Series(dtype=object), *(p[REASON] for p in pairs.values() if REASON in p)],
        ignore_index=True,
    )
    return {
        "splits": per_split,
        "targeted_rules": {rule.name: int((reasons == rule.name).sum()) for rule in rules},
        "leakage": leakage,
        "leaked_queries": len(set().union(*leakage.values())),
    }


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}

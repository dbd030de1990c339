"""Sampling: query-level splits, pair strata, stratified and targeted pair samples, the
unlabeled candidate pool, and the report that proves no query leaks between splits."""

from relevance_kit.sampling.pools import retrieve_candidates
from relevance_kit.sampling.report import sampling_report
from relevance_kit.sampling.splits import (
    REST,
    first_queries,
    golden_pool,
    resolve_sizes,
    split_queries,
)
from relevance_kit.sampling.strata import pair_features, query_strata
from relevance_kit.sampling.stratified import REASON, stratified_sample
from relevance_kit.sampling.targeted import Condition, TargetRule, combine_samples, targeted_sample

__all__ = [
    "REASON",
    "REST",
    "Condition",
    "TargetRule",
    "combine_samples",
    "first_queries",
    "golden_pool",
    "pair_features",
    "query_strata",
    "resolve_sizes",
    "retrieve_candidates",
    "sampling_report",
    "split_queries",
    "stratified_sample",
    "targeted_sample",
]

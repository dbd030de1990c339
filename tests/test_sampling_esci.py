"""Smoke test of the sampling library on the real ESCI-US sample (150 queries, 6,678 judged
pairs, 6,764 products) as the real loader prepares it (conftest's `demo_data`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from relevance_kit.lexical import CatalogBM25
from relevance_kit.sampling import (
    REASON,
    TargetRule,
    combine_samples,
    pair_features,
    retrieve_candidates,
    sampling_report,
    split_queries,
    stratified_sample,
    targeted_sample,
)
from tests.test_sampling import bounds

SIZES = {"golden": 30, "annotate": 0.3, "teacher": 0.2, "unlabeled": "rest"}
RULES = [
    {
        "name": "overlap_but_irrelevant",
        "where": {
            "lexical_overlap": bounds(min_quantile=0.75),
            "label": bounds(in_=["irrelevant"]),
        },
        "max_pairs": 100,
    },
    {
        "name": "low_overlap_but_relevant",
        "where": {"lexical_overlap": bounds(max_quantile=0.25), "label": bounds(in_=["relevant"])},
        "max_pairs": 100,
    },
    {"name": "rare_category", "where": {"category_frequency": bounds(max=0.01)}, "max_pairs": 50},
]


@pytest.fixture(scope="module")
def esci(demo_data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """queries, judgments (etsy3 labels), listings: the prepare stage's parquet files."""
    prepared = demo_data / "prepared"
    return tuple(
        pd.read_parquet(prepared / f"{name}.parquet")
        for name in ("queries", "judgments", "listings")
    )


def test_sampling_on_esci(esci):
    queries, judgments, listings = esci
    assert (len(queries), len(judgments)) == (150, 6678)
    bm25 = CatalogBM25(listings)

    splits = split_queries(queries, judgments, listings, SIZES, seed=0)
    assert splits["query_id"].is_unique and len(splits) == 150
    assert splits["split"].value_counts().to_dict() == {
        "golden": 30,
        "annotate": 45,
        "unlabeled": 45,
        "teacher": 30,
    }
    whole = splits["query_length_bucket"].value_counts(normalize=True)
    golden = splits.loc[splits["split"] == "golden", "query_length_bucket"].value_counts(
        normalize=True
    )
    assert (golden.reindex(whole.index, fill_value=0) - whole).abs().max() <= 0.05

    in_split = {name: group for name, group in splits.groupby("split")["query_id"]}
    annotate_pool = pair_features(
        judgments[judgments["query_id"].isin(in_split["annotate"])], queries, listings, bm25
    )
    rules = [TargetRule.model_validate(rule) for rule in RULES]
    annotate = combine_samples(
        targeted_sample(annotate_pool, rules, seed=0),
        stratified_sample(
            annotate_pool, ["label", "category", "query_length_bucket"], n=500, seed=0
        ),
    )
    candidates = retrieve_candidates(in_split["unlabeled"], queries, bm25, top_k=50)
    assert "label" not in candidates.columns
    judged = candidates.merge(judgments, on=["query_id", "listing_id"], how="left", indicator=True)
    assert (judged["_merge"] == "left_only").any()

    pairs = {
        "golden": judgments[judgments["query_id"].isin(in_split["golden"])],
        "annotate": annotate,
        "unlabeled": candidates,
    }
    report = sampling_report(splits, pairs, rules)
    assert report["leaked_queries"] == 0
    assert all(count > 0 for count in report["targeted_rules"].values())
    assert not annotate.duplicated(["query_id", "listing_id"]).any()
    assert len(annotate) >= 500 and annotate[REASON].notna().all()

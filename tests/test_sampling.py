"""Sampling library on a synthetic catalogue: splits, strata, stratified and targeted samples,
the unlabeled candidate pool and the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.lexical import CatalogBM25
from relevance_kit.sampling import (
    REASON,
    TargetRule,
    combine_samples,
    first_queries,
    golden_pool,
    pair_features,
    resolve_sizes,
    retrieve_candidates,
    sampling_report,
    split_queries,
    stratified_sample,
    targeted_sample,
)
from relevance_kit.sampling.allocation import stratum_key
from relevance_kit.sampling.pools import CANDIDATE_COLUMNS
from relevance_kit.sampling.strata import UNKNOWN

CATEGORIES = {  # root -> (share of catalogue, nouns)
    "Home": (0.35, ["towel", "mug", "lamp", "pillow", "rug"]),
    "Clothing": (0.25, ["shirt", "dress", "sock", "jacket", "scarf"]),
    "Tools": (0.15, ["hammer", "wrench", "drill", "saw"]),
    "Toys": (0.10, ["puzzle", "doll", "kite"]),
    "Books": (0.08, ["novel", "atlas", "cookbook"]),
    "Garden": (0.05, ["hose", "shovel"]),
    "Music": (0.02, ["guitar", "drum"]),
}
ADJECTIVES = ["red", "blue", "large", "small", "cotton", "wooden", "steel", "soft", "old", "wool"]
LENGTHS = ([1, 2, 3, 4, 5, 6, 7], [0.1, 0.2, 0.2, 0.2, 0.15, 0.1, 0.05])
SIZES = {"golden": 12, "annotate": 0.3, "teacher": 0.2, "unlabeled": "rest"}
UNBOUNDED = {"min": None, "max": None, "min_quantile": None, "max_quantile": None, "in": None}


def bounds(**given: object) -> dict:
    """A targeted rule's condition as conf/ writes it: the bounds given (`in_` for `in`),
    every other bound None."""
    return UNBOUNDED | {("in" if key == "in_" else key): value for key, value in given.items()}


RULES = [
    {
        "name": "overlap_but_irrelevant",
        "where": {
            "lexical_overlap": bounds(min_quantile=0.75),
            "label": bounds(in_=["irrelevant"]),
        },
        "max_pairs": 5,
    },
    {
        "name": "low_overlap_but_relevant",
        "where": {"lexical_overlap": bounds(max_quantile=0.25), "label": bounds(in_=["relevant"])},
        "max_pairs": 1000,
    },
    {"name": "rare_category", "where": {"category_frequency": bounds(max=0.05)}, "max_pairs": 3},
]


def make_dataset(n_queries: int = 60, n_listings: int = 600, per_query: int = 10, seed: int = 0):
    """Listings with category paths (3 % missing), queries of 1-7 tokens naming a product noun,
    and `per_query` judged listings per query, labelled by noun and category match with noise."""
    rng = np.random.default_rng(seed)
    roots = list(CATEGORIES)
    shares = np.array([CATEGORIES[r][0] for r in roots])
    shares /= shares.sum()

    listing_rows, nouns = [], []
    for i in range(n_listings):
        root = roots[rng.choice(len(roots), p=shares)]
        noun = str(rng.choice(CATEGORIES[root][1]))
        adjs = rng.choice(ADJECTIVES, size=2, replace=False)
        listing_rows.append(
            {
                "listing_id": f"L{i:04d}",
                "title": f"{adjs[0]} {adjs[1]} {noun}",
                "brand": str(rng.choice(["acme", "zenith", "nova"])),
                "color": str(adjs[0]),
                "category": [] if rng.random() < 0.03 else [root, noun],
                "rating_count": int(rng.integers(0, 5000)),
            }
        )
        nouns.append((root, noun))
    listings = pd.DataFrame(listing_rows)

    query_rows, judgment_rows = [], []
    for q in range(n_queries):
        root = roots[rng.choice(len(roots), p=shares)]
        noun = str(rng.choice(CATEGORIES[root][1]))
        length = int(rng.choice(LENGTHS[0], p=LENGTHS[1]))
        words = [*rng.choice(ADJECTIVES, size=length - 1, replace=False), noun]
        qid = f"q{q:03d}"
        query_rows.append({"query_id": qid, "text": " ".join(words)})
        same = [i for i, (r, _) in enumerate(nouns) if r == root]
        picked = set(rng.choice(same, size=per_query // 2, replace=False).tolist())
        while len(picked) < per_query:
            picked.add(int(rng.integers(n_listings)))
        for i in sorted(picked):
            r, n = nouns[i]
            if n == noun:
                label = "relevant" if rng.random() < 0.85 else "partially_relevant"
            elif r == root:  # sometimes relevant without sharing the noun (a synonym)
                label = str(
                    rng.choice(
                        ["relevant", "partially_relevant", "irrelevant"], p=[0.15, 0.6, 0.25]
                    )
                )
            else:
                label = "irrelevant" if rng.random() < 0.8 else "partially_relevant"
            judgment_rows.append({"query_id": qid, "listing_id": f"L{i:04d}", "label": label})
    return pd.DataFrame(query_rows), pd.DataFrame(judgment_rows), listings


@pytest.fixture(scope="module")
def data():
    return make_dataset()


@pytest.fixture(scope="module")
def bm25(data):
    return CatalogBM25(data[2])


@pytest.fixture(scope="module")
def features(data, bm25):
    queries, judgments, listings = data
    return pair_features(judgments, queries, listings, bm25)


@pytest.fixture(scope="module")
def rules():
    return [TargetRule.model_validate(rule) for rule in RULES]


def split(data, sizes=SIZES, seed=0, **kwargs) -> pd.DataFrame:
    return split_queries(*data, sizes=sizes, seed=seed, **kwargs)


def shares(values: pd.Series) -> pd.Series:
    return values.value_counts(normalize=True)


# --- splits ---------------------------------------------------------------------------------


def test_every_query_in_exactly_one_split_with_the_asked_sizes(data):
    splits = split(data)
    assert splits["query_id"].is_unique
    assert set(splits["query_id"]) == set(data[0]["query_id"])
    assert splits["split"].value_counts().to_dict() == {
        "golden": 12,
        "annotate": 18,
        "teacher": 12,
        "unlabeled": 18,
    }


def test_same_seed_same_splits_other_seed_other_splits(data):
    pd.testing.assert_frame_equal(split(data, seed=7), split(data, seed=7))
    assert not split(data, seed=7)["split"].equals(split(data, seed=8)["split"])


def test_splits_do_not_depend_on_input_row_order(data):
    queries, judgments, listings = data
    shuffled = (queries.sample(frac=1, random_state=1), judgments[::-1], listings)
    pd.testing.assert_frame_equal(split(data, seed=3), split(shuffled, seed=3))


@pytest.mark.parametrize("seed", range(5))
def test_golden_keeps_the_query_length_mix(data, seed):
    splits = split(data, sizes={"golden": 20, "rest": "rest"}, seed=seed)
    whole = shares(splits["query_length_bucket"])
    golden = shares(splits.loc[splits["split"] == "golden", "query_length_bucket"])
    assert (golden.reindex(whole.index, fill_value=0) - whole).abs().max() <= 0.1


def test_rare_dominant_categories_are_grouped(data):
    splits = split(data, min_category_queries=8)
    held = splits["dominant_category"].value_counts()
    assert "other" in held.index
    assert (held.drop("other") >= 8).all()


def test_max_queries_subsamples_before_splitting(data):
    splits = split(data, max_queries=30)
    assert len(splits) == 30 and splits["query_id"].is_unique
    assert set(splits["query_id"]) <= set(data[0]["query_id"])
    assert splits["split"].value_counts().to_dict() == {
        "golden": 12,
        "annotate": 9,
        "teacher": 6,
        "unlabeled": 3,
    }
    everyone = split(data)
    assert (
        shares(splits["query_length_bucket"]) - shares(everyone["query_length_bucket"])
    ).abs().max() <= 0.1


def test_annotation_budget_in_queries_is_a_nested_seeded_draw(data):
    judgments = data[1]
    budgets = {n: first_queries(judgments, n, seed=3) for n in (5, 20, 40)}
    kept = {n: set(pairs["query_id"]) for n, pairs in budgets.items()}
    assert {n: len(q) for n, q in kept.items()} == {5: 5, 20: 20, 40: 40}
    assert kept[5] < kept[20] < kept[40]  # a learning curve's points are nested
    for n, pairs in budgets.items():  # every judged pair of a kept query, nothing else
        assert len(pairs) == judgments["query_id"].isin(kept[n]).sum()
    assert set(first_queries(judgments, 5, seed=4)["query_id"]) != kept[5]
    assert first_queries(judgments, None, seed=3) is judgments
    assert first_queries(judgments, 10_000, seed=3) is judgments


def test_golden_pool_caps_pairs_per_query_with_a_seeded_draw(data):
    splits = split(data)
    judged = data[1]
    pool = golden_pool(judged, splits, None, seed=0)
    golden_queries = set(splits.loc[splits["split"] == "golden", "query_id"])
    assert (
        set(pool["query_id"]) == golden_queries
        and len(pool) == judged["query_id"].isin(golden_queries).sum()
    )
    capped = golden_pool(judged, splits, 3, seed=0)
    assert (
        capped.groupby("query_id").size().max() == 3 and set(capped["query_id"]) == golden_queries
    )
    assert capped.equals(golden_pool(judged, splits, 3, seed=0))
    assert capped.merge(pool).shape[0] == len(capped)  # a subset of the uncapped pool


def test_fractions_without_rest_cover_every_query():
    counts = resolve_sizes({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10)
    assert sum(counts.values()) == 10 and set(counts.values()) == {3, 4}


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"a": "rest", "b": "rest"}, "only one split"),
        ({"a": 10, "b": 0.5}, "cover 40 of 60"),
        ({"a": 50, "b": 20, "c": "rest"}, "need 70 queries"),
        ({"a": 1.5, "b": "rest"}, "fractions in"),
        ({"a": -1, "b": "rest"}, "counts must be >= 0"),
        ({"a": True, "b": "rest"}, "a=True"),
    ],
)
def test_bad_split_sizes_are_config_errors(sizes, message):
    with pytest.raises(ConfigError, match=message):
        resolve_sizes(sizes, 60)


# --- pair features --------------------------------------------------------------------------


def test_pair_features_columns_and_values(data, features):
    _, judgments, listings = data
    assert len(features) == len(judgments)
    assert {
        "label",
        "query_length_bucket",
        "category",
        "category_frequency",
        "lexical_overlap",
        "bm25_score",
    } <= set(features.columns)
    assert features["lexical_overlap"].between(0, 1).all()
    assert (features.loc[features["lexical_overlap"] == 1, "bm25_score"] > 0).all()

    missing = set(listings.loc[listings["category"].map(len) == 0, "listing_id"])
    assert (features.loc[features["listing_id"].isin(missing), "category"] == UNKNOWN).all()
    home_share = sum(1 for c in listings["category"] if len(c) and c[0] == "Home") / len(listings)
    assert np.allclose(
        features.loc[features["category"] == "Home", "category_frequency"], home_share
    )


def test_lexical_overlap_is_the_share_of_query_tokens_in_the_listing(bm25):
    listings = pd.DataFrame(
        [
            {
                "listing_id": "a",
                "title": "Red Cotton Towel",
                "brand": None,
                "color": None,
                "category": ["Home"],
            }
        ]
    )
    queries = pd.DataFrame([{"query_id": "q", "text": "red linen towel set"}])
    pairs = pd.DataFrame([{"query_id": "q", "listing_id": "a"}])
    assert (
        pair_features(pairs, queries, listings, CatalogBM25(listings))["lexical_overlap"].item()
        == 0.5
    )


def test_pair_features_rejects_unknown_listings_and_duplicate_pairs(data, bm25):
    queries, judgments, listings = data
    with pytest.raises(DataError, match="pairs.listing_id.*nope"):
        pair_features(
            pd.DataFrame([{"query_id": "q000", "listing_id": "nope"}]), queries, listings, bm25
        )
    with pytest.raises(DataError, match="duplicate"):
        pair_features(pd.concat([judgments.head(2), judgments.head(1)]), queries, listings, bm25)


# --- stratified sample ----------------------------------------------------------------------


def test_stratified_sample_is_proportional_within_rounding(features):
    sample = stratified_sample(features, ["label"], n=100, seed=0)
    assert len(sample) == 100
    quota = shares(features["label"]) * 100
    assert (sample["label"].value_counts() - quota).abs().max() < 1


def test_stratified_sample_keeps_every_stratum_when_the_budget_allows(features):
    strata = ["label", "category", "query_length_bucket"]
    keys = pd.Series(stratum_key(features, strata))
    n = keys.nunique() + 40
    sample = stratified_sample(features, strata, n=n, seed=1)
    assert len(sample) == n and not sample.duplicated(["query_id", "listing_id"]).any()
    counts = sample[REASON].value_counts().reindex(keys.unique(), fill_value=0)
    assert (counts >= 1).all()
    quota = keys.value_counts() / len(keys) * n
    assert (counts - quota).abs().max() < 2  # one for rounding, one for the minimum of one
    assert (sample[REASON] == stratum_key(sample, strata)).all()


def test_stratified_sample_budget_edges_and_seed(features):
    assert len(stratified_sample(features, ["label"], n=None, seed=0)) == len(features)
    assert len(stratified_sample(features, ["label"], n=10**6, seed=0)) == len(features)
    assert stratified_sample(features, ["label"], n=0, seed=0).empty
    a, b = (stratified_sample(features, ["category"], n=50, seed=s) for s in (4, 4))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(DataError, match="no_such_column"):
        stratified_sample(features, ["no_such_column"], n=5, seed=0)


# --- targeted sample ------------------------------------------------------------------------


def test_targeted_rules_pick_only_matching_pairs_within_their_budget(features, rules):
    sample = targeted_sample(features, rules, seed=0)
    assert not sample.duplicated(["query_id", "listing_id"]).any()
    high = features["lexical_overlap"].quantile(0.75)
    low = features["lexical_overlap"].quantile(0.25)
    checks = {
        "overlap_but_irrelevant": lambda p: (
            (p["lexical_overlap"] >= high) & (p["label"] == "irrelevant")
        ),
        "low_overlap_but_relevant": lambda p: (
            (p["lexical_overlap"] <= low) & (p["label"] == "relevant")
        ),
        "rare_category": lambda p: p["category_frequency"] <= 0.05,
    }
    for rule in rules:
        picked = sample[sample[REASON] == rule.name]
        assert checks[rule.name](picked).all(), rule.name
        assert 1 <= len(picked) <= rule.max_pairs
    first = rules[0]
    assert (sample[REASON] == first.name).sum() == min(
        first.max_pairs, checks[first.name](features).sum()
    )
    assert (sample[REASON] == "rare_category").sum() == 3


def test_a_pair_in_both_samples_keeps_its_rule_name(features, rules):
    targeted = targeted_sample(features, rules, seed=0)
    stratified = stratified_sample(features, ["label", "category"], n=400, seed=0)
    combined = combine_samples(targeted, stratified)
    key = ["query_id", "listing_id"]
    assert not combined.duplicated(key).any()
    both = targeted.merge(stratified[key], on=key)
    assert not both.empty
    reasons = combined.merge(both[[*key, REASON]], on=key, suffixes=("", "_rule"))
    assert (reasons[REASON] == reasons[f"{REASON}_rule"]).all()
    assert len(combined) == len(pd.concat([targeted[key], stratified[key]]).drop_duplicates())


def test_a_rule_on_an_absent_column_names_the_rule_and_the_column(data, bm25, rules):
    queries, _, listings = data
    candidates = retrieve_candidates(queries["query_id"][:5], queries, bm25, top_k=10)
    pool = pair_features(candidates, queries, listings, bm25)
    with pytest.raises(DataError, match=r"'overlap_but_irrelevant'.*'label'"):
        targeted_sample(pool, rules, seed=0)


def test_numeric_bounds_on_a_text_column_are_data_errors(features):
    rule = TargetRule(name="odd", where={"category": bounds(min=1)}, max_pairs=1)
    with pytest.raises(DataError, match="'odd'.*'category'.*numeric"):
        targeted_sample(features, [rule], seed=0)


@pytest.mark.parametrize(
    "raw",
    [
        {"name": "empty", "where": {"label": bounds()}, "max_pairs": 1},
        {"name": "missing", "where": {"label": {"in": ["relevant"]}}, "max_pairs": 1},
        {"name": "typo", "where": {"label": bounds(inn=["relevant"])}, "max_pairs": 1},
        {"name": "label=relevant", "where": {"label": bounds(in_=["relevant"])}, "max_pairs": 1},
        {"name": "negative", "where": {"label": bounds(in_=["relevant"])}, "max_pairs": -1},
        {"name": "no_conditions", "where": {}, "max_pairs": 1},
    ],
)
def test_malformed_rules_fail_validation(raw):
    with pytest.raises(ValidationError):
        TargetRule.model_validate(raw)


def test_duplicate_rule_names_are_config_errors(features, rules):
    with pytest.raises(ConfigError, match="unique"):
        targeted_sample(features, [rules[0], rules[0]], seed=0)


# --- unlabeled pool and report --------------------------------------------------------------


def test_candidates_come_from_the_whole_catalogue_without_labels(data, bm25):
    queries, judgments, _ = data
    pool_ids = split(data).query("split == 'unlabeled'")["query_id"]
    candidates = retrieve_candidates(pool_ids, queries, bm25, top_k=30)
    assert list(candidates.columns) == CANDIDATE_COLUMNS
    assert set(candidates["query_id"]) == set(pool_ids)
    assert (
        candidates.groupby("query_id")["rank"]
        .apply(lambda r: list(r) == list(range(1, len(r) + 1)))
        .all()
    )
    assert (candidates.groupby("query_id")["bm25_score"].diff().dropna() <= 0).all()
    judged = candidates.merge(judgments, on=["query_id", "listing_id"], how="left", indicator=True)
    assert (judged["_merge"] == "left_only").sum() > len(candidates) / 2
    with pytest.raises(DataError, match="nope"):
        retrieve_candidates(["nope"], queries, bm25, top_k=5)


def test_report_counts_and_leakage(data, bm25, features, rules):
    queries, _, _ = data
    splits = split(data)
    in_split = {name: set(group) for name, group in splits.groupby("split")["query_id"]}
    annotate_pool = features[features["query_id"].isin(in_split["annotate"])]
    pairs = {
        "golden": features[features["query_id"].isin(in_split["golden"])],
        "annotate": combine_samples(
            targeted_sample(annotate_pool, rules, seed=0),
            stratified_sample(annotate_pool, ["label", "category"], n=60, seed=0),
        ),
        "unlabeled": retrieve_candidates(sorted(in_split["unlabeled"]), queries, bm25, top_k=20),
    }
    report = sampling_report(splits, pairs, rules)
    json.dumps(report)  # a DVC metric file: plain JSON types only

    assert report["leaked_queries"] == 0
    assert report["leakage"] and all(ids == [] for ids in report["leakage"].values())
    assert {name: s["queries"] for name, s in report["splits"].items()} == {
        "golden": 12,
        "annotate": 18,
        "teacher": 12,
        "unlabeled": 18,
    }
    assert report["splits"]["annotate"]["pairs"] == len(pairs["annotate"])
    assert report["splits"]["teacher"]["pairs"] == 0
    assert sum(report["splits"]["golden"]["query_strata"]["query_length_bucket"].values()) == 12
    for rule in rules:
        assert report["targeted_rules"][rule.name] == (pairs["annotate"][REASON] == rule.name).sum()

    leaked = pd.concat([pairs["annotate"], pairs["golden"].head(1)])
    report = sampling_report(splits, {**pairs, "annotate": leaked}, rules)
    assert report["leakage"]["golden&annotate"] == [pairs["golden"]["query_id"].iloc[0]]
    assert report["leaked_queries"] == 1

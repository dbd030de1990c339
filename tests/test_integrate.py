"""Integration modes on hand-made candidate lists (probability tables are input data), real
LightGBM lambdarank rankers trained on small hand-made sets, stacking order, Hydra
instantiation and the scorer adapters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.integrate.candidates import BASE_FEATURES, popularity_baseline
from relevance_kit.integrate.modes import (
    Boost,
    Feature,
    Filter,
    LossWeight,
    SearchState,
    instantiate_modes,
)
from relevance_kit.integrate.ranker import LambdaRanker, RankerSpec
from relevance_kit.integrate.results import request_metrics
from relevance_kit.integrate.scorers import OnlineScorerPairs, PredictionsPairs
from relevance_kit.integrate.simulate import ranker_arms, result_rows, simulate

GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}
LABELS = list(GAINS)
PARAMS = {"n_estimators": 30, "learning_rate": 0.2, "num_leaves": 4, "min_child_samples": 2}


def _candidates(
    p_relevant: list[float], p_irrelevant: list[float], query: str = "q"
) -> pd.DataFrame:
    """Candidates in baseline order (score descending) with the given probabilities."""
    n = len(p_relevant)
    frame = pd.DataFrame({"query_id": query, "listing_id": [f"{query}-l{i}" for i in range(n)]})
    frame["p_relevant"], frame["p_irrelevant"] = p_relevant, p_irrelevant
    frame["p_partially_relevant"] = 1 - frame["p_relevant"] - frame["p_irrelevant"]
    frame["pred_gain"] = frame["p_relevant"] + 0.5 * frame["p_partially_relevant"]
    frame["pred_worst"] = frame["p_irrelevant"]
    frame["label"] = np.where(
        frame["p_relevant"] > 0.5,
        "relevant",
        np.where(frame["p_irrelevant"] > 0.5, "irrelevant", "partially_relevant"),
    )
    frame["score"] = -np.arange(n, dtype=float)
    frame["shown"] = True
    for feature in BASE_FEATURES:
        frame[feature] = 0.0
    return frame


def _state(cands: pd.DataFrame, k: int = 3, rank_with=None) -> SearchState:
    return SearchState(cands, LABELS, k, rank_with or (lambda spec, c: c["score"].to_numpy()))


def _ranks(state: SearchState) -> dict[str, int | None]:
    rows = result_rows("arm", state.candidates)
    return {
        lid: (None if pd.isna(r) else int(r)) for lid, r in zip(rows["listing_id"], rows["rank"])
    }


def test_filter_hides_listings_above_the_threshold_before_ranking() -> None:
    state = _state(_candidates([0.1, 0.9, 0.0, 0.6], [0.8, 0.0, 0.5, 0.3]))
    ranks = _ranks(Filter(threshold=0.5).apply(state))
    assert ranks == {"q-l0": None, "q-l1": 1, "q-l2": 2, "q-l3": 3}  # 0.5 is not above 0.5
    assert _ranks(Filter(threshold=0.2, label="relevant").apply(state))["q-l1"] is None


def test_boost_promotes_within_the_top_k_only() -> None:
    state = _state(_candidates([0.1, 0.5, 0.9, 0.95, 0.85], [0.5, 0.2, 0.0, 0.0, 0.0]), k=3)
    ranks = _ranks(Boost(rules=[{"label": "relevant", "min_prob": 0.8}]).apply(state))
    # l2 is the only top-3 listing meeting the rule; l3, l4 (beyond the top 3) stay put
    assert ranks == {"q-l2": 1, "q-l0": 2, "q-l1": 3, "q-l3": 4, "q-l4": 5}
    wider = _ranks(Boost(rules=[{"label": "relevant", "min_prob": 0.8}], window=5).apply(state))
    assert [lid for lid, _ in sorted(wider.items(), key=lambda x: x[1])][:3] == [
        "q-l2",
        "q-l3",
        "q-l4",
    ]


def test_boost_rules_rank_in_order_and_are_validated() -> None:
    state = _state(_candidates([0.1, 0.6, 0.9], [0.1, 0.1, 0.0]), k=3)
    rules = [{"label": "relevant", "min_prob": 0.8}, {"label": "relevant", "min_prob": 0.5}]
    assert _ranks(Boost(rules=rules).apply(state)) == {"q-l2": 1, "q-l1": 2, "q-l0": 3}
    with pytest.raises(ConfigError, match=r"rules\[0\]"):
        Boost(rules=[{"label": "relevant", "prob": 0.8}])
    with pytest.raises(ConfigError, match="not a taxonomy label"):
        Boost(rules=[{"label": "exact", "min_prob": 0.8}]).apply(state)


def _training_set(rng: np.random.Generator, n_queries: int, n_items: int = 8) -> pd.DataFrame:
    """Queries whose grade is visible only through predicted relevance (features are noise)."""
    rows = []
    for q in range(n_queries):
        grade = rng.integers(0, 3, size=n_items)
        frame = pd.DataFrame(
            {"query_id": f"t{q}", "listing_id": [f"t{q}-{i}" for i in range(n_items)]}
        )
        frame["label"] = [LABELS[2 - g] for g in grade]
        frame["pred_gain"] = np.clip(grade / 2 + rng.normal(0, 0.1, n_items), 0, 1)
        frame["pred_worst"] = 1 - frame["pred_gain"]
        for feature in BASE_FEATURES:
            frame[feature] = rng.normal(size=n_items)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def test_feature_mode_learns_from_predicted_relevance_and_beats_the_ranker_without_it() -> None:
    rng = np.random.default_rng(0)
    ranker = LambdaRanker(_training_set(rng, 40), GAINS, seed=0, params=PARAMS)
    test = _training_set(rng, 10).assign(score=0.0, shown=True)
    state = _state(test, k=5, rank_with=ranker.scores)
    log = simulate(state, [Feature()])
    per = request_metrics(log, GAINS, k=5).groupby("arm")["ndcg"].mean()
    assert set(per.index) == {"baseline", "ranker", "feature"}
    assert per["feature"] > 0.95 and per["feature"] > per["ranker"] + 0.15


def test_loss_weight_changes_what_the_ranker_learns() -> None:
    """Queries with predicted relevance 1 reward feature x; twice as many with predicted
    relevance 0 punish it. Unweighted, the ranker follows the majority; with weights
    floor + (1 - floor) * pred_gain and floor 0 it follows the relevant queries."""
    rows = []
    for q in range(30):
        relevant_query = q % 3 == 0
        x = np.arange(6, dtype=float)
        grade = x // 2 if relevant_query else (5 - x) // 2
        frame = pd.DataFrame(
            {"query_id": f"t{q}", "listing_id": [f"t{q}-{i}" for i in range(6)], "bm25": x}
        )
        frame["label"] = [LABELS[2 - int(g)] for g in grade]
        frame["pred_gain"] = 1.0 if relevant_query else 0.0
        frame["pred_worst"] = 1 - frame["pred_gain"]
        for feature in BASE_FEATURES[1:]:
            frame[feature] = 0.0
        rows.append(frame)
    ranker = LambdaRanker(pd.concat(rows, ignore_index=True), GAINS, seed=0, params=PARAMS)
    probe = pd.DataFrame({"bm25": [0.0, 5.0], **{f: 0.0 for f in BASE_FEATURES[1:]}})
    unweighted = ranker.scores(RankerSpec(), probe)
    weighted = ranker.scores(RankerSpec(weight_floor=0.0), probe)
    assert unweighted[0] > unweighted[1] and weighted[1] > weighted[0]
    state = _state(
        probe.assign(query_id="p", listing_id=["a", "b"], score=0.0, shown=True),
        rank_with=ranker.scores,
    )
    assert LossWeight(floor=0.0).apply(state).spec == RankerSpec(weight_floor=0.0)


def test_stacking_follows_config_order() -> None:
    cands = _candidates([0.1, 0.2, 0.9], [0.6, 0.1, 0.0])
    by_listing = {"q-l0": 3.0, "q-l1": 2.0, "q-l2": 1.0}  # a "ranker" that prefers l0
    state = _state(cands, rank_with=lambda spec, c: c["listing_id"].map(by_listing).to_numpy())
    boost = Boost(rules=[{"label": "relevant", "min_prob": 0.8}])
    feature_then_boost = _ranks(boost.apply(Feature().apply(state)))
    boost_then_feature = _ranks(Feature().apply(boost.apply(state)))
    assert feature_then_boost["q-l2"] == 1 and boost_then_feature["q-l2"] == 3
    filter_then_feature = _ranks(Feature().apply(Filter(0.5).apply(state)))
    assert filter_then_feature["q-l0"] is None  # a ranker mode keeps what the filter hid hidden
    log = simulate(state, [Filter(0.5), Feature(), boost])
    assert list(dict.fromkeys(log["arm"])) == [
        "baseline",
        "ranker",
        "filter",
        "feature",
        "boost",
        "stacked",
    ]
    assert ranker_arms([Filter(0.5), Feature(), boost]) == ["feature", "stacked"]


def test_modes_are_hydra_targets_and_bad_entries_name_their_index() -> None:
    modes = instantiate_modes(
        [
            {"_target_": "relevance_kit.integrate.modes.Filter", "threshold": 0.4},
            {
                "_target_": "relevance_kit.integrate.modes.Boost",
                "rules": [{"label": "relevant", "min_prob": 0.9}],
            },
        ]
    )
    assert (
        isinstance(modes[0], Filter) and modes[0].threshold == 0.4 and isinstance(modes[1], Boost)
    )
    with pytest.raises(ConfigError, match=r"modes\[0\].*threshold"):
        instantiate_modes([{"_target_": "relevance_kit.integrate.modes.Filter", "threshold": 2.0}])
    with pytest.raises(ConfigError, match=r"modes\[1\]"):
        instantiate_modes(
            [
                {"_target_": "relevance_kit.integrate.modes.Feature"},
                {"_target_": "relevance_kit.integrate.modes.Nope"},
            ]
        )
    with pytest.raises(ConfigError, match="not an integration Mode"):
        instantiate_modes([{"_target_": "collections.OrderedDict"}])


def test_popularity_baseline_standardises_within_each_query() -> None:
    cands = pd.DataFrame(
        {
            "query_id": ["a", "a", "b", "b"],
            "bm25": [1.0, 3.0, 10.0, 30.0],
            "log_popularity": [5.0, 1.0, 1.0, 1.0],
        }
    )
    score = popularity_baseline(cands, bm25_weight=1.0, popularity_weight=2.0)
    # query a: bm25 z = [-.71, .71], popularity z = [.71, -.71] -> popularity wins; b: ties on popularity
    assert score[0] > score[1] and score[3] > score[2]
    assert score[2] == pytest.approx(-np.sqrt(0.5))


class _TableScorer:
    """The student's online API over a hand-made table (labels in a different order)."""

    labels = ("irrelevant", "relevant", "partially_relevant")

    def score(self, query: str, listing_ids: list[str]) -> np.ndarray:
        table = {"x": [0.1, 0.7, 0.2], "y": [0.6, 0.1, 0.3]}
        if query != "red shoes":
            raise AssertionError(query)
        return np.asarray([table[i] for i in listing_ids])


def test_scorer_adapters_reorder_labels_and_check_coverage() -> None:
    pairs = pd.DataFrame({"query_id": ["q1", "q1"], "listing_id": ["y", "x"]})
    scored = OnlineScorerPairs(_TableScorer(), {"q1": "red shoes"}, LABELS).score_pairs(pairs)
    assert scored[["p_relevant", "p_partially_relevant", "p_irrelevant"]].values.tolist() == [
        [0.1, 0.3, 0.6],
        [0.7, 0.2, 0.1],
    ]
    table = PredictionsPairs(scored, LABELS, tier="teacher", where="teacher.parquet")
    assert table.score_pairs(pairs.iloc[::-1])["p_relevant"].tolist() == [0.7, 0.1]
    with pytest.raises(DataError, match=r"teacher.parquet: has no prediction for 1 of 2"):
        table.score_pairs(pd.DataFrame({"query_id": ["q1", "q2"], "listing_id": ["x", "x"]}))


def test_integration_table_is_valid_markdown() -> None:
    """GFM drops a table whose delimiter row has another cell count than its header."""
    from relevance_kit.integrate.experiment import render_markdown
    from relevance_kit.schemas import METRICS

    row = {m: 0.5 for m in METRICS} | {"unjudged_at_k": 0.1}
    delta = {"diff": 0.01, "low": -0.02, "high": 0.04, "p_ttest": 0.5, "p_wilcoxon": 0.6}
    report = {
        "confidence": 0.95, "label_source": "human", "scorer": "student", "unjudged": "exclude",
        "n_queries": 3, "k": 10, "arms": {"baseline": row, "feature": row},
        "vs_control": {"feature": {m: delta for m in METRICS}},
    }  # fmt: skip
    table = [line for line in render_markdown(report).splitlines() if line.startswith("|")]
    cells = [line.count("|") for line in table]
    assert len(table) == 4 and len(set(cells)) == 1, table

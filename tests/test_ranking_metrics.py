"""Threshold-free measures (relevance_kit.evaluation.ranking_metrics): the one-pass weighted
AUC agrees with scikit-learn's, ties included; nDCG follows the scores; intervals resample
queries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from relevance_kit.evaluation.ranking_metrics import per_query_ndcg, threshold_free, weighted_auc

LABELS = ["relevant", "partially_relevant", "irrelevant"]
GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}


def test_weighted_auc_equals_sklearn_with_ties_and_weights() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(300) < 0.3
    score = np.round(rng.normal(positive * 0.8, 1.0), 1)  # rounded: many ties
    weights = rng.integers(0, 4, size=(5, 300)).astype(float)
    ours = weighted_auc(positive, score, weights)
    for row, value in zip(weights, ours):
        assert value == pytest.approx(roc_auc_score(positive, score, sample_weight=row))
    assert weighted_auc(positive, positive.astype(float), np.ones((1, 300)))[0] == 1.0
    assert weighted_auc(positive, np.zeros(300), np.ones((1, 300)))[0] == 0.5  # all tied


def golden_frame(score_noise: float, seed: int = 0) -> pd.DataFrame:
    """20 queries x 10 pairs; the score is the gain plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(LABELS, 200)
    gain = pd.Series(labels).map(GAINS).to_numpy()
    return pd.DataFrame(
        {
            "query_id": np.repeat([f"q{i:02d}" for i in range(20)], 10),
            "y_true": labels,
            "score": gain + rng.normal(0, score_noise, 200),
        }
    )


def test_ndcg_per_query_matches_sklearn_and_skips_undefined_queries() -> None:
    frame = golden_frame(0.3)
    frame.loc[frame["query_id"] == "q00", "y_true"] = "irrelevant"  # no gain: undefined
    frame = pd.concat([frame, frame.head(1).assign(query_id="solo")])  # one pair: undefined
    values, defined = per_query_ndcg(frame, GAINS, 5)
    assert defined.sum() == 19 and not defined[0] and not defined[-1]
    q01 = frame[frame["query_id"] == "q01"]
    expected = ndcg_score([q01["y_true"].map(GAINS)], [q01["score"]], k=5)
    assert values[1] == pytest.approx(expected)


def test_a_better_score_ranks_better_with_intervals() -> None:
    sharp = threshold_free(golden_frame(0.1), LABELS, GAINS, 10, 200, 0)
    vague = threshold_free(golden_frame(2.0), LABELS, GAINS, 10, 200, 0)
    assert sharp["auc_vs_rest"]["relevant"]["estimate"] > 0.95
    assert sharp["auc_vs_rest"]["irrelevant"]["estimate"] > 0.95  # the score, negated
    assert vague["auc_vs_rest"]["relevant"]["estimate"] < 0.75
    assert sharp["ndcg_at_10"]["estimate"] > vague["ndcg_at_10"]["estimate"]
    for measures in (sharp, vague):
        for value in [*measures["auc_vs_rest"].values(), measures["ndcg_at_10"]]:
            assert value["low"] <= value["estimate"] <= value["high"]
    unscored = golden_frame(0.1).assign(score=np.nan)
    assert threshold_free(unscored, LABELS, GAINS, 10, 200, 0) is None

"""A/B statistics against known values: Student's sleep data (R's paired t.test), an exact
Wilcoxon case, G*Power's matched-pairs sample size, and result-log metrics by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import ndcg_score

from relevance_kit.errors import DataError
from relevance_kit.integrate.abtest import (
    analyse_log,
    paired_power,
    paired_sample_size,
    paired_test,
)
from relevance_kit.integrate.results import request_metrics

GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}

# Cushny & Peebles via Student (1908): extra sleep (hours) under two drugs, same 10 patients.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_test_matches_r_on_the_sleep_data() -> None:
    diffs = np.subtract(SLEEP_2, SLEEP_1)
    result = paired_test(diffs, n_resamples=4000, confidence=0.95, seed=0)
    # R: t.test(extra ~ group, data = sleep, paired = TRUE): t = -4.0621, df = 9, p = 0.002833
    assert result["diff"] == pytest.approx(1.58)
    assert result["p_ttest"] == pytest.approx(0.002833, abs=5e-6)
    assert result["p_ttest"] == pytest.approx(stats.ttest_rel(SLEEP_2, SLEEP_1).pvalue)
    # the bootstrap interval lies near R's t interval [0.700, 2.460] and excludes 0
    assert 0.5 < result["low"] < 1.0 and 2.1 < result["high"] < 2.6


def test_wilcoxon_exact_p_when_every_difference_is_positive() -> None:
    diffs = np.arange(1, 11) / 100  # 10 distinct positive differences: p = 2 / 2**10
    assert paired_test(diffs, 1000, 0.95, 0)["p_wilcoxon"] == pytest.approx(2 / 1024)


def test_identical_arms_give_zero_difference_and_p_one() -> None:
    result = paired_test(np.zeros(8), 1000, 0.95, 0)
    assert (result["diff"], result["low"], result["high"], result["p_ttest"]) == (
        0.0,
        0.0,
        0.0,
        1.0,
    )


def test_sample_size_matches_gpower_matched_pairs() -> None:
    # G*Power, t tests - means: difference between two dependent means (matched pairs),
    # dz = 0.5, alpha = 0.05 two-tailed, power 0.80 -> total sample size 34, actual power 0.8078
    assert paired_sample_size(effect=0.5, sd_diff=1.0) == 34
    assert paired_power(34, 0.5, 1.0) == pytest.approx(0.8078, abs=1e-4)
    assert paired_power(33, 0.5, 1.0) < 0.8
    # the effect in metric units: 4 points at sd 0.08 is the same dz
    assert paired_sample_size(effect=0.04, sd_diff=0.08) == 34


def test_sample_size_rejects_a_zero_effect() -> None:
    with pytest.raises(DataError, match="non-zero effect"):
        paired_sample_size(0.0, 1.0)


def _log(
    arm: str, labels: list[str | None], ranks: list[int | None], request: str = "r1"
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": request,
            "query_id": request,
            "arm": arm,
            "rank": pd.array(ranks, dtype="Int64"),
            "listing_id": [f"l{i}" for i in range(len(labels))],
            "label": labels,
        }
    )


def test_request_metrics_by_hand_with_unjudged_and_hidden_rows() -> None:
    log = _log(
        "a",
        ["relevant", None, "irrelevant", "partially_relevant", "relevant"],
        [1, 2, 3, 4, None],  # the last (relevant) listing was hidden
    )
    row = request_metrics(log, GAINS, k=3, unjudged="exclude").iloc[0]
    # condensed top-3 judged: relevant, irrelevant, partially_relevant
    assert row["pct_relevant"] == pytest.approx(1 / 3)
    assert row["pct_irrelevant"] == pytest.approx(1 / 3)
    assert row["unjudged_at_k"] == pytest.approx(1 / 3)
    dcg = 1.0 + 0.0 / np.log2(3) + 0.5 / np.log2(4)
    idcg = 1.0 + 1.0 / np.log2(3) + 0.5 / np.log2(4)  # ideal includes the hidden relevant one
    assert row["ndcg"] == pytest.approx(dcg / idcg)
    worst = request_metrics(log, GAINS, k=3, unjudged="irrelevant").iloc[0]
    assert worst["pct_irrelevant"] == pytest.approx(2 / 3) and worst["unjudged_at_k"] == 0.0


def test_ndcg_agrees_with_sklearn_when_nothing_is_hidden() -> None:
    labels = [
        "partially_relevant",
        "irrelevant",
        "relevant",
        "relevant",
        "partially_relevant",
        "irrelevant",
    ]
    row = request_metrics(_log("a", labels, [1, 2, 3, 4, 5, 6]), GAINS, k=4).iloc[0]
    gains = [[GAINS[label] for label in labels]]
    assert row["ndcg"] == pytest.approx(ndcg_score(gains, [[6, 5, 4, 3, 2, 1]], k=4))


def test_probability_logs_give_expected_metrics() -> None:
    log = _log("a", [None, None], [1, 2]).drop(columns="label")
    log["p_relevant"], log["p_partially_relevant"], log["p_irrelevant"] = (
        [0.8, 0.2],
        [0.2, 0.2],
        [0.0, 0.6],
    )
    row = request_metrics(log, GAINS, k=2).iloc[0]
    assert row["pct_relevant"] == pytest.approx(0.5) and row["pct_irrelevant"] == pytest.approx(0.3)


def test_bad_logs_fail_naming_the_problem() -> None:
    with pytest.raises(DataError, match="label"):
        request_metrics(_log("a", ["relevant"], [1]).drop(columns="label"), GAINS, k=1)
    with pytest.raises(DataError, match="not in the taxonomy"):
        request_metrics(_log("a", ["exact"], [1]), GAINS, k=1)
    with pytest.raises(DataError, match="share a rank"):
        request_metrics(_log("a", ["relevant", "relevant"], [1, 1]), GAINS, k=1)


def test_analyse_log_pairs_queries_and_reports_the_label_source() -> None:
    rng = np.random.default_rng(0)
    parts = []
    for q in range(30):
        control = rng.choice(list(GAINS), size=5, p=[0.4, 0.3, 0.3]).tolist()
        treatment = rng.choice(list(GAINS), size=5, p=[0.7, 0.2, 0.1]).tolist()
        parts += [
            _log("control", control, [1, 2, 3, 4, 5], f"q{q}"),
            _log("treatment", treatment, [1, 2, 3, 4, 5], f"q{q}"),
        ]
    report = analyse_log(
        pd.concat(parts), GAINS, 5, "control", ["treatment"], label_source="teacher",
        n_resamples=1000, seed=0, detect={"pct_relevant": 0.05},
    )  # fmt: skip
    row = report["vs_control"]["treatment"]["pct_relevant"]
    assert report["label_source"] == "teacher" and row["n"] == 30
    assert row["low"] <= row["diff"] <= row["high"] and row["diff"] > 0 and row["p_ttest"] < 0.01
    assert row["n_to_detect"] == paired_sample_size(0.05, row["sd_diff"])

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

from relevance_kit.errors import DataError
from relevance_kit.evaluation.metrics import (
    accuracy,
    bootstrap_ci,
    class_f1,
    classification_report,
    cohen_kappa,
    confusion_by_query,
    macro_f1,
    paired_bootstrap,
    per_class_f1,
)

LABELS = ["relevant", "partially_relevant", "irrelevant"]


def golden_like(seed: int, n_queries: int = 40, n_pairs: int = 1700, p_correct: float = 0.6):
    """Pairs of ~golden-set size: predictions right with probability p_correct."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(LABELS, size=n_pairs, p=[0.5, 0.3, 0.2])
    y_pred = np.where(rng.random(n_pairs) < p_correct, y_true, rng.choice(LABELS, size=n_pairs))
    query_id = np.sort(rng.integers(0, n_queries, size=n_pairs)).astype(str)
    return pd.DataFrame({"query_id": query_id, "y_true": y_true, "y_pred": y_pred.astype(object)})


@pytest.fixture
def frame() -> pd.DataFrame:
    return golden_like(seed=1)


def test_report_matches_sklearn(frame):
    report = classification_report(frame["y_true"], frame["y_pred"], LABELS)
    y_true, y_pred = frame["y_true"], frame["y_pred"]
    assert report["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, labels=LABELS, average="macro")
    )
    assert report["f1"] == pytest.approx(
        dict(zip(LABELS, f1_score(y_true, y_pred, labels=LABELS, average=None)))
    )
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report["cohen_kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred))
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=LABELS).tolist()
    assert sum(report["not_predicted"].values()) == 0


def test_confusion_metrics_match_report_with_missing_predictions(frame):
    frame.loc[frame.index[::7], "y_pred"] = None  # a tier that abstains on some pairs
    report = classification_report(frame["y_true"], frame["y_pred"], LABELS)
    cm = confusion_by_query(frame, LABELS)[1].sum(axis=0)
    assert float(macro_f1(cm)) == pytest.approx(report["macro_f1"])
    assert per_class_f1(cm) == pytest.approx(list(report["f1"].values()))
    assert float(class_f1(2)(cm)) == pytest.approx(report["f1"]["irrelevant"])
    assert float(accuracy(cm)) == pytest.approx(report["accuracy"])
    assert float(cohen_kappa(cm)) == pytest.approx(report["cohen_kappa"])
    # an abstention is an error: lower accuracy than scoring only the predicted pairs
    answered = frame[frame["y_pred"].notna()]
    assert report["accuracy"] < accuracy_score(answered["y_true"], answered["y_pred"].astype(str))
    assert sum(report["not_predicted"].values()) == len(frame.index[::7])


def test_summed_query_confusions_equal_pooled(frame):
    query_ids, cms = confusion_by_query(frame, LABELS)
    assert list(query_ids) == sorted(frame["query_id"].unique())
    pooled = confusion_matrix(frame["y_true"], frame["y_pred"], labels=LABELS)
    np.testing.assert_array_equal(cms.sum(axis=0)[:, : len(LABELS)], pooled)
    assert cms.sum() == len(frame)


def test_unknown_label_is_an_error(frame):
    frame.loc[0, "y_pred"] = "exact"
    with pytest.raises(DataError, match="exact"):
        classification_report(frame["y_true"], frame["y_pred"], LABELS)
    with pytest.raises(DataError, match="exact"):
        confusion_by_query(frame, LABELS)


def test_bootstrap_ci_contains_estimate_and_is_deterministic(frame):
    ci = bootstrap_ci(frame, macro_f1, 500, seed=7, labels=LABELS)
    assert ci["low"] < ci["estimate"] < ci["high"]
    assert ci["estimate"] == pytest.approx(
        f1_score(frame["y_true"], frame["y_pred"], average="macro")
    )
    assert bootstrap_ci(frame, macro_f1, 500, seed=7, labels=LABELS) == ci
    assert bootstrap_ci(frame, macro_f1, 500, seed=8, labels=LABELS) != ci
    wide = bootstrap_ci(frame, macro_f1, 500, seed=7, confidence=0.99, labels=LABELS)
    assert wide["low"] <= ci["low"] and wide["high"] >= ci["high"]


def test_cluster_bootstrap_is_wider_when_queries_share_outcomes():
    """When all pairs of a query are right or wrong together, there are ~40 independent
    outcomes rather than 1,700: resampling pairs would claim far too much precision."""
    rng = np.random.default_rng(3)
    frame = golden_like(seed=3, p_correct=1.0)
    wrong_queries = frame["query_id"].drop_duplicates().sample(frac=0.4, random_state=3)
    wrong = frame["query_id"].isin(wrong_queries)
    frame.loc[wrong, "y_pred"] = rng.permuted(frame.loc[wrong, "y_true"].to_numpy())
    per_pair = frame.assign(query_id=np.arange(len(frame)).astype(str))
    clustered = bootstrap_ci(frame, accuracy, 1000, seed=0, labels=LABELS)
    pairwise = bootstrap_ci(per_pair, accuracy, 1000, seed=0, labels=LABELS)
    assert clustered["estimate"] == pytest.approx(pairwise["estimate"])
    assert clustered["high"] - clustered["low"] > 2 * (pairwise["high"] - pairwise["low"])


def test_paired_bootstrap_of_a_tier_against_itself(frame):
    result = paired_bootstrap(frame, frame.copy(), macro_f1, 500, seed=0, labels=LABELS)
    assert result == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}


def test_paired_bootstrap_detects_a_better_tier():
    good = golden_like(seed=5, p_correct=0.8)
    bad = good.copy()
    flip = np.random.default_rng(5).random(len(bad)) < 0.4
    bad.loc[flip, "y_pred"] = "irrelevant"
    result = paired_bootstrap(good, bad, macro_f1, 1000, seed=0, labels=LABELS)
    assert result["diff"] > 0 and result["low"] > 0
    assert result["p_value"] == pytest.approx(2 / 1001)  # no resample on the other side of 0
    reverse = paired_bootstrap(bad, good, macro_f1, 1000, seed=0, labels=LABELS)
    assert reverse["diff"] == pytest.approx(-result["diff"])
    assert reverse["p_value"] == result["p_value"]


def test_paired_bootstrap_refuses_different_pairs(frame):
    with pytest.raises(DataError, match="same golden pairs"):
        paired_bootstrap(frame, frame.iloc[:-5], macro_f1, 100, seed=0, labels=LABELS)


def test_vectorised_bootstrap_equals_resampling_the_pairs_of_drawn_queries(frame):
    """The bootstrap weights per-query confusion counts by how often each query is drawn;
    that must give what copying the drawn queries' pairs and scoring them with sklearn gives.
    (Its speed is a benchmark's business, not a timed test's.)"""
    from relevance_kit.evaluation.metrics import query_resample_weights

    n_resamples, seed = 40, 3
    ci = bootstrap_ci(frame, macro_f1, n_resamples, seed=seed, confidence=0.9, labels=LABELS)
    queries = np.unique(frame["query_id"].to_numpy(dtype=str))
    by_query = dict(tuple(frame.groupby("query_id")))
    naive = [
        f1_score(sample["y_true"], sample["y_pred"], labels=LABELS, average="macro")
        for sample in (
            pd.concat([by_query[q] for q, c in zip(queries, weights) for _ in range(c)])
            for weights in query_resample_weights(len(queries), n_resamples, seed)
        )
    ]
    assert (ci["low"], ci["high"]) == pytest.approx(tuple(np.quantile(naive, [0.05, 0.95])))

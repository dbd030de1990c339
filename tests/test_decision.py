"""Decision biases: a prior shift tuned on validation macro-F1, reusable by every tier."""

from __future__ import annotations

import numpy as np
import pytest

from relevance_kit.errors import DataError
from relevance_kit.evaluation.decision import DecisionBiases
from relevance_kit.evaluation.metrics import macro_f1

LABELS = ["relevant", "partially_relevant", "irrelevant"]


def _f1(y: list[str], pred: list[str]) -> float:
    idx = {label: i for i, label in enumerate(LABELS)}
    cm = np.zeros((3, 3), dtype=int)
    for a, b in zip(y, pred):
        cm[idx[a], idx[b]] += 1
    return float(macro_f1(cm))


def _skewed(seed: int, n: int = 600) -> tuple[np.ndarray, list[str]]:
    """A model whose probabilities carry signal but over-predict the majority class."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 1.5
    logits[:, 0] += 1.5  # the majority bias a model learns from skewed labels
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, [LABELS[i] for i in y]


def test_biases_raise_macro_f1_on_held_out_data_and_keep_rows_normalised() -> None:
    val_probs, val_y = _skewed(0)
    test_probs, test_y = _skewed(1)
    biases = DecisionBiases(LABELS).fit(val_probs, val_y)
    assert biases.validation_macro_f1["after"] > biases.validation_macro_f1["before"]
    argmax = [LABELS[i] for i in test_probs.argmax(1)]
    assert _f1(test_y, biases.predict(test_probs)) > _f1(test_y, argmax) + 0.03
    shifted = biases.apply(test_probs)
    assert np.allclose(shifted.sum(1), 1.0) and biases.biases[0] == 0.0


def test_no_gain_leaves_the_model_decision_alone() -> None:
    probs = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 0.9 + 0.1 / 3
    y = [LABELS[i] for i in [0, 1, 2, 0, 1, 2]]
    biases = DecisionBiases(LABELS).fit(probs, y)
    assert biases.predict(probs) == y


def test_round_trip_and_label_mismatch() -> None:
    probs, y = _skewed(2, 200)
    biases = DecisionBiases(LABELS).fit(probs, y)
    again = DecisionBiases.from_dict(biases.to_dict(), LABELS)
    assert np.allclose(again.apply(probs), biases.apply(probs))
    with pytest.raises(DataError, match="fitted for labels"):
        DecisionBiases.from_dict(
            biases.to_dict(), ["exact", "substitute", "complement", "irrelevant"]
        )
    with pytest.raises(DataError, match="not in"):
        DecisionBiases(LABELS).fit(probs[:2], ["relevant", "exact"])
    with pytest.raises(DataError, match="shape"):
        DecisionBiases(LABELS).apply(np.ones((2, 4)) / 4)


def _queries(
    rng: np.random.Generator, n_queries: int, per_query: int
) -> tuple[np.ndarray, list[str], list[str]]:
    """Pairs grouped by query, each query with its own label mix (as in search data), scored
    by a model that over-predicts the majority class."""
    probs, y, groups = [], [], []
    for q in range(n_queries):
        codes = rng.choice(3, size=per_query, p=rng.dirichlet([3, 2, 1]))
        logits = rng.normal(0, 1, (per_query, 3))
        logits[np.arange(per_query), codes] += 1.2
        logits[:, 0] += 1.0
        probs.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
        y += [LABELS[i] for i in codes]
        groups += [f"q{q}"] * per_query
    return np.concatenate(probs), y, groups


def test_biases_bagged_over_queries_carry_over_more_steadily_from_a_small_slice() -> None:
    """Tuned on 8 validation queries, scored on 200 new ones, over 8 draws: the bagged biases
    vary less from draw to draw and lose nothing on average."""
    point, bagged = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        val_probs, val_y, val_groups = _queries(rng, 8, 40)
        test_probs, test_y, _ = _queries(rng, 200, 40)
        point.append(_f1(test_y, DecisionBiases(LABELS).fit(val_probs, val_y).predict(test_probs)))
        fitted = DecisionBiases(LABELS).fit(val_probs, val_y, val_groups, n_bootstrap=30, seed=seed)
        bagged.append(_f1(test_y, fitted.predict(test_probs)))
        assert fitted.validation_macro_f1["n_bootstrap"] == 30
    assert np.std(bagged) < np.std(point)
    assert np.mean(bagged) >= np.mean(point)

"""Decision biases: a prior shift tuned on validation macro-F1, reusable by every tier."""

from __future__ import annotations

import numpy as np
import pytest

from relevance_kit.decision import DecisionBiases
from relevance_kit.errors import DataError
from relevance_kit.metrics import macro_f1

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
        DecisionBiases.from_dict(biases.to_dict(), ["exact", "substitute", "complement", "irrelevant"])
    with pytest.raises(DataError, match="not in"):
        DecisionBiases(LABELS).fit(probs[:2], ["relevant", "exact"])
    with pytest.raises(DataError, match="shape"):
        DecisionBiases(LABELS).apply(np.ones((2, 4)) / 4)

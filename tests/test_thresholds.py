import numpy as np
import pytest
from sklearn.metrics import f1_score

from relevance_kit.evaluation.thresholds import OrdinalThresholds

LABELS = ["relevant", "partially_relevant", "irrelevant"]


def separable(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores in [2.1, 3] are relevant, [1.1, 1.9] partial, [0, 0.9] irrelevant."""
    rng = np.random.default_rng(seed)
    ranges = {"relevant": (2.1, 3.0), "partially_relevant": (1.1, 1.9), "irrelevant": (0.0, 0.9)}
    sizes = {"relevant": 50, "partially_relevant": 30, "irrelevant": 80}
    scores = np.concatenate([rng.uniform(*ranges[k], size=sizes[k]) for k in LABELS])
    y = np.concatenate([[k] * sizes[k] for k in LABELS])
    order = rng.permutation(len(y))
    return scores[order], y[order]


def test_recovers_known_cut_points_on_separable_data():
    scores, y = separable(seed=0)
    fitted = OrdinalThresholds().fit(scores, y, LABELS)
    assert fitted.train_macro_f1 == 1.0
    high, low = fitted.cuts
    assert 1.9 < high < 2.1 and 0.9 < low < 1.1
    new_scores, new_y = separable(seed=1)
    assert list(fitted.predict(new_scores)) == list(new_y)


def test_two_labels_finds_the_best_single_cut():
    """With one cut the search is exhaustive over midpoints: compare with brute force."""
    rng = np.random.default_rng(2)
    y = rng.choice(["yes", "no"], size=200, p=[0.3, 0.7])
    scores = rng.normal(size=200) + (y == "yes")
    fitted = OrdinalThresholds().fit(scores, y, ["yes", "no"])
    distinct = np.unique(scores)
    best = max(
        f1_score(y, np.where(scores >= cut, "yes", "no"), average="macro")
        for cut in (distinct[:-1] + distinct[1:]) / 2
    )
    assert fitted.train_macro_f1 == pytest.approx(best)
    assert fitted.train_macro_f1 == pytest.approx(
        f1_score(y, fitted.predict(scores), average="macro")
    )


def test_noisy_data_beats_prior_quantile_cuts_and_is_deterministic():
    rng = np.random.default_rng(4)
    y = rng.choice(LABELS, size=2000, p=[0.6, 0.15, 0.25])
    scores = rng.normal(size=2000) + np.select(
        [y == "relevant", y == "partially_relevant"], [2.0, 1.0], 0.0
    )
    fitted = OrdinalThresholds().fit(scores, y, LABELS)
    assert fitted.cuts[0] >= fitted.cuts[1]
    assert fitted.train_macro_f1 == pytest.approx(
        f1_score(y, fitted.predict(scores), average="macro")
    )
    # the starting point reproduces the label shares; the search must not end below it
    prior = OrdinalThresholds(max_sweeps=0).fit(scores, y, LABELS)
    assert fitted.train_macro_f1 >= prior.train_macro_f1
    again = OrdinalThresholds().fit(scores, y, LABELS)
    assert again.to_dict() == fitted.to_dict()


def test_round_trips_through_dict():
    scores, y = separable(seed=0)
    fitted = OrdinalThresholds().fit(scores, y, LABELS)
    restored = OrdinalThresholds.from_dict(fitted.to_dict())
    assert list(restored.predict(scores)) == list(fitted.predict(scores))
    assert restored.to_dict() == fitted.to_dict()


def test_rejects_unknown_labels_and_non_finite_scores():
    with pytest.raises(ValueError, match="exact"):
        OrdinalThresholds().fit([0.1, 0.2], ["relevant", "exact"], LABELS)
    with pytest.raises(ValueError, match="finite"):
        OrdinalThresholds().fit([0.1, np.nan], ["relevant", "irrelevant"], LABELS)
    with pytest.raises(RuntimeError, match="before fit"):
        OrdinalThresholds().predict([0.1])

"""Ordinal cut points that turn a scalar relevance score into taxonomy labels.

Every tier that yields a score rather than a label (BM25, embedding cosine, a ranker) needs
the same mapping, fitted for the metric the tier table reports (macro-F1), so the baselines
are judged on their best threshold rather than an arbitrary one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from relevance_kit.evaluation.metrics import macro_f1


class OrdinalThresholds:
    """K-1 cut points on a score (higher = more relevant) for K labels ordered best to worst.

    `cuts[i]` is the lowest score labelled `labels[i]` or better, so cuts are non-increasing;
    equal neighbouring cuts leave a label unused.
    """

    def __init__(self, n_candidates: int = 256, max_sweeps: int = 20) -> None:
        self.n_candidates = n_candidates
        self.max_sweeps = max_sweeps
        self.labels: list[str] = []
        self.cuts: np.ndarray = np.empty(0)
        self.train_macro_f1 = float("nan")

    def fit(self, scores: Sequence[float], y: Sequence[str], labels: Sequence[str]) -> Self:
        """Coordinate ascent on macro-F1 over candidate cuts (midpoints between distinct
        scores, thinned to `n_candidates` by quantile), starting from the cuts that
        reproduce the training label shares."""
        scores_arr = np.asarray(scores, dtype=np.float64)
        self.labels = list(labels)
        k = len(self.labels)
        index = {label: i for i, label in enumerate(self.labels)}
        if len(scores_arr) == 0 or not np.isfinite(scores_arr).all():
            raise ValueError("thresholds need at least one score, all finite")
        unknown = sorted({str(v) for v in y if v not in index})
        if unknown:
            raise ValueError(f"labels {unknown} are not in {self.labels}")
        true_idx = np.array([index[v] for v in y], dtype=np.int64)

        def score_of(cuts: np.ndarray) -> float:
            pred_idx = _label_index(scores_arr, cuts)
            cm = np.bincount(true_idx * k + pred_idx, minlength=k * k).reshape(k, k)
            return float(macro_f1(cm))

        candidates = self._candidates(scores_arr)
        share_better = np.cumsum(np.bincount(true_idx, minlength=k))[:-1] / len(true_idx)
        cuts = np.quantile(scores_arr, 1 - share_better)
        best = score_of(cuts)
        for _ in range(self.max_sweeps):
            improved = False
            for i in range(k - 1):
                upper = cuts[i - 1] if i > 0 else np.inf
                lower = cuts[i + 1] if i < k - 2 else -np.inf
                for value in candidates[(candidates >= lower) & (candidates <= upper)]:
                    trial = cuts.copy()
                    trial[i] = value
                    trial_score = score_of(trial)
                    if trial_score > best:
                        best, cuts, improved = trial_score, trial, True
            if not improved:
                break
        self.cuts, self.train_macro_f1 = cuts, best
        return self

    def predict(self, scores: Sequence[float]) -> np.ndarray:
        """Labels (object array) for `scores`."""
        if not self.labels:
            raise RuntimeError("OrdinalThresholds.predict called before fit")
        return np.array(self.labels, dtype=object)[
            _label_index(np.asarray(scores, dtype=np.float64), self.cuts)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "cuts": self.cuts.tolist(),
            "train_macro_f1": self.train_macro_f1,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild fitted thresholds from `to_dict` output (e.g. a stage's saved JSON)."""
        fitted = cls()
        fitted.labels = list(data["labels"])
        fitted.cuts = np.asarray(data["cuts"], dtype=np.float64)
        fitted.train_macro_f1 = float(data["train_macro_f1"])
        return fitted

    def _candidates(self, scores: np.ndarray) -> np.ndarray:
        distinct = np.unique(scores)
        if len(distinct) == 1:
            return distinct
        midpoints = (distinct[:-1] + distinct[1:]) / 2
        if len(midpoints) <= self.n_candidates:
            return midpoints
        picks = np.round(np.linspace(0, len(midpoints) - 1, self.n_candidates)).astype(int)
        return midpoints[np.unique(picks)]


def _label_index(scores: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Label index per score: the number of cuts it falls below (0 = best label)."""
    return (scores[:, None] < cuts[None, :]).sum(axis=1)

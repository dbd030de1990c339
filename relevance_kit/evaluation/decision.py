"""Per-class decision biases: a prior shift tuned on a validation slice for macro-F1.

A classifier trained on skewed labels (here mostly `relevant`) under-predicts rare classes;
the argmax of its probabilities is not the macro-F1-optimal decision. Adding a bias `b_k` to
each class's log-probability (p'_k ∝ p_k·exp(b_k)) is the label-shift correction: rows still
sum to 1, the argmax is the tuned decision, and one rule serves every tier that yields
class probabilities (teacher, student, zero-shot LLMs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from relevance_kit.errors import DataError
from relevance_kit.evaluation.metrics import macro_f1

_EPS = 1e-12


class DecisionBiases:
    """Log-space class biases (the first label's is fixed at 0), fitted by coordinate ascent
    over a grid on validation macro-F1."""

    def __init__(self, labels: Sequence[str], biases: Sequence[float] | None = None) -> None:
        self.labels = list(labels)
        self.biases = (
            np.zeros(len(self.labels)) if biases is None else np.asarray(biases, dtype=np.float64)
        )
        if self.biases.shape != (len(self.labels),):
            raise DataError(
                f"decision biases: expected {len(self.labels)} values for {self.labels}, got {list(self.biases)}"
            )
        self.validation_macro_f1: dict[str, float] = {}

    def fit(
        self,
        probs: np.ndarray,
        y_true: Sequence[str],
        groups: Sequence[str] | None = None,
        n_bootstrap: int = 0,
        seed: int = 0,
        grid: Sequence[float] = tuple(np.linspace(-4, 4, 81)),
        sweeps: int = 4,
    ) -> Self:
        """Tune the biases on (probs, y_true) for macro-F1; keep 0 where nothing helps, so a
        tiny or one-class validation slice leaves the model's own decision in place.

        With `groups` (the pairs' query ids) and `n_bootstrap` > 0 the biases are the mean of
        those tuned on query-bootstrap resamples (bagging): a slice of a few queries has a
        jagged macro-F1 surface, and its single best point does not carry over to new queries
        (on cpu_demo: golden macro-F1 0.305 with point biases vs 0.337 bagged)."""
        probs = self._check(probs)
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted({str(v) for v in y_true if v not in index})
        if unknown:
            raise DataError(
                f"decision biases: validation labels {unknown} are not in {self.labels}"
            )
        true_idx = np.array([index[v] for v in y_true], dtype=np.int64)
        logp = np.log(probs + _EPS)
        bagged = groups is not None and n_bootstrap > 0
        if not bagged:
            self.biases = self._coordinate_ascent(logp, true_idx, grid, sweeps)
        else:
            rows = [np.flatnonzero(np.asarray(groups) == g) for g in np.unique(np.asarray(groups))]
            rng = np.random.default_rng(seed)
            fits = []
            for _ in range(n_bootstrap):
                sample = np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))])
                fits.append(self._coordinate_ascent(logp[sample], true_idx[sample], grid, sweeps))
            self.biases = np.mean(fits, axis=0)
        self.validation_macro_f1 = {
            "before": self._macro_f1(logp, true_idx, np.zeros(len(self.labels))),
            "after": self._macro_f1(logp, true_idx, self.biases),
            "n_pairs": len(true_idx),
            "n_bootstrap": n_bootstrap if bagged else 0,
        }
        return self

    def _macro_f1(self, logp: np.ndarray, true_idx: np.ndarray, biases: np.ndarray) -> float:
        k = len(self.labels)
        pred = np.argmax(logp + biases, axis=1)
        return float(macro_f1(np.bincount(true_idx * k + pred, minlength=k * k).reshape(k, k)))

    def _coordinate_ascent(
        self, logp: np.ndarray, true_idx: np.ndarray, grid: Sequence[float], sweeps: int
    ) -> np.ndarray:
        """Best biases on one sample: one class at a time over the grid, smallest |b| on ties."""
        biases = np.zeros(len(self.labels))
        best = self._macro_f1(logp, true_idx, biases)
        for _ in range(sweeps):
            improved = False
            for j in range(1, len(self.labels)):
                for value in grid:
                    trial = biases.copy()
                    trial[j] = value
                    s = self._macro_f1(logp, true_idx, trial)
                    if s > best + 1e-9 or (s == best and abs(value) < abs(biases[j])):
                        improved |= s > best + 1e-9
                        best, biases = max(s, best), trial
            if not improved:
                break
        return biases

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """The shifted probabilities p'_k ∝ p_k·exp(b_k) (rows sum to 1)."""
        logits = np.log(self._check(probs) + _EPS) + self.biases
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, probs: np.ndarray) -> list[str]:
        return [self.labels[i] for i in np.argmax(self.apply(probs), axis=1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "biases": dict(zip(self.labels, map(float, self.biases))),
            "validation_macro_f1": self.validation_macro_f1,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], labels: Sequence[str]) -> Self:
        """Rebuild for `labels`; fails when the saved biases were fitted for other labels."""
        saved = data.get("biases", {})
        if sorted(saved) != sorted(labels):
            raise DataError(
                f"decision biases were fitted for labels {sorted(saved)}, the taxonomy has {list(labels)}"
            )
        out = cls(labels, [saved[label] for label in labels])
        out.validation_macro_f1 = dict(data.get("validation_macro_f1", {}))
        return out

    def _check(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(self.labels):
            raise DataError(
                f"decision biases: probabilities must have shape (n, {len(self.labels)}), got {probs.shape}"
            )
        return probs

"""The teacher's combined head: the fine-tuned teacher weighed against pair evidence.

A teacher fine-tuned on a few thousand annotated pairs learns what the annotator's labels
say about the text, but forgets part of what its pretrained encoder knew (zero-shot MiniLM
ranks better than the fine-tuned teacher on Home Depot's irrelevant class). A small
multinomial logistic regression over the teacher's log-probabilities and standardised
evidence (relevance_kit.evidence) learns on held-out queries how much each deserves:

| input         | shape  | what                                                      |
| ------------- | ------ | --------------------------------------------------------- |
| `probs`       | (n, K) | the teacher's class probabilities, taxonomy order          |
| `evidence`    | (n, F) | the configured evidence features of the same pairs         |
| `y`           | (n,)   | the annotator's labels (fit only)                          |
| `groups`      | (n,)   | the pairs' queries: folds never split a query (out_of_fold) |

It is fitted on the teacher's validation slice, which the teacher never trained on; its
out-of-fold probabilities there are what the decision biases are tuned on, so neither the
head nor the biases see their own training rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from relevance_kit.errors import DataError

_EPS = 1e-12
# The logit of a label the head never saw in training: it is never predicted.
ABSENT_LOGIT = -30.0


class CombinedHead:
    """Multinomial logistic regression over [log p_teacher, standardised evidence]."""

    def __init__(self, labels: Sequence[str], features: Sequence[str], c: float = 1.0) -> None:
        self.labels, self.features, self.c = list(labels), list(features), c
        k, f = len(self.labels), len(self.features)
        self.mean, self.scale = np.zeros(f), np.ones(f)
        # coef (K, K + F) and intercept (K,) in taxonomy order; absent labels stay at ABSENT_LOGIT
        self.coef = np.zeros((k, k + f))
        self.intercept = np.full(k, ABSENT_LOGIT)

    @classmethod
    def identity(cls, labels: Sequence[str], features: Sequence[str]) -> Self:
        """The head that returns the teacher's probabilities unchanged (for tests and benches)."""
        head = cls(labels, features)
        head.coef[:, : len(head.labels)] = np.eye(len(head.labels))
        head.intercept[:] = 0.0
        return head

    def fit(self, probs: np.ndarray, evidence: pd.DataFrame, y: Sequence[str]) -> Self:
        """Fit on labelled pairs; needs at least two distinct labels among them."""
        X = self._inputs(probs, evidence, fitting=True)
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted({str(v) for v in y if v not in index})
        if unknown:
            raise DataError(f"combined head: labels {unknown} are not in {self.labels}")
        y_idx = np.array([index[v] for v in y])
        if len(y_idx) != len(X):
            raise DataError(f"combined head: {len(X)} rows of inputs but {len(y_idx)} labels")
        seen = np.unique(y_idx)
        if len(seen) < 2:
            raise DataError(
                f"combined head: the validation pairs hold one label only ({self.labels[seen[0]]!r}"
                f" x {len(y_idx)}); enlarge teacher.validation_fraction or set teacher.combined_head: null"
            )
        model = LogisticRegression(C=self.c, max_iter=2000).fit(X, y_idx)
        coef, intercept = model.coef_, model.intercept_
        if len(seen) == 2:  # scikit-learn's binary form: one row for the second class
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-1, 1]) * intercept / 2
        self.coef = np.zeros_like(self.coef)
        self.intercept = np.full(len(self.labels), ABSENT_LOGIT)
        self.coef[seen], self.intercept[seen] = coef, intercept
        return self

    def out_of_fold(
        self,
        probs: np.ndarray,
        evidence: pd.DataFrame,
        y: Sequence[str],
        groups: Sequence[str],
        folds: int,
    ) -> np.ndarray:
        """Each pair's probabilities from a head fitted without its query (GroupKFold)."""
        groups = np.asarray(groups)
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise DataError(
                f"combined head: out-of-fold probabilities need 2+ validation queries, got {n_groups};"
                " enlarge teacher.validation_fraction"
            )
        y = np.asarray(y)
        out = np.zeros((len(y), len(self.labels)))
        for fit_rows, held_out in GroupKFold(min(folds, n_groups)).split(y, groups=groups):
            fold = CombinedHead(self.labels, self.features, self.c)
            fold.fit(probs[fit_rows], evidence.iloc[fit_rows], y[fit_rows])
            out[held_out] = fold.apply(probs[held_out], evidence.iloc[held_out])
        return out

    def apply(self, probs: np.ndarray, evidence: pd.DataFrame) -> np.ndarray:
        """The combined class probabilities (rows sum to 1)."""
        logits = self._inputs(probs, evidence) @ self.coef.T + self.intercept
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def _inputs(
        self, probs: np.ndarray, evidence: pd.DataFrame, fitting: bool = False
    ) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(self.labels):
            raise DataError(
                f"combined head: probabilities must have shape (n, {len(self.labels)}), got {probs.shape}"
            )
        missing = [f for f in self.features if f not in evidence.columns]
        if missing or len(evidence) != len(probs):
            raise DataError(
                f"combined head: evidence needs columns {self.features} and {len(probs)} rows;"
                f" missing {missing}, got {len(evidence)} rows"
            )
        values = evidence[self.features].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values).all(axis=1) | ~np.isfinite(probs).all(axis=1)
        if bad.any():
            raise DataError(f"combined head: row {int(np.flatnonzero(bad)[0])}: non-finite input")
        if fitting:
            self.mean = values.mean(axis=0)
            self.scale = np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
        return np.hstack([np.log(probs + _EPS), (values - self.mean) / self.scale])

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels, "features": self.features, "c": self.c,
            "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "coef": self.coef.tolist(), "intercept": self.intercept.tolist(),
        }  # fmt: skip

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], labels: Sequence[str], features: Sequence[str]
    ) -> Self:
        """Rebuild; fails when the head was fitted for other labels or features."""
        if data.get("labels") != list(labels) or data.get("features") != list(features):
            raise DataError(
                f"combined head was fitted for labels {data.get('labels')} and features"
                f" {data.get('features')}; the config asks for {list(labels)} and {list(features)}"
            )
        head = cls(labels, features, data["c"])
        head.mean, head.scale = np.asarray(data["mean"]), np.asarray(data["scale"])
        head.coef, head.intercept = np.asarray(data["coef"]), np.asarray(data["intercept"])
        return head

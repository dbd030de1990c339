"""The learned ranker: LightGBM lambdarank, trained on judged pairs of NON-held-out queries.

Its target is the judged label as an ordinal grade (worst = 0) with the taxonomy gains as
lambdarank's label gains. Two integration modes change it: `feature` adds predicted relevance
as features, `loss_weight` re-weights its training examples by predicted relevance
(LightGBM's lambdarank scales each example's gradient by its weight).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from relevance_kit.integrate.candidates import BASE_FEATURES

RELEVANCE_FEATURES = ["pred_gain", "pred_worst"]  # expected gain, P(worst label)


@dataclass(frozen=True)
class RankerSpec:
    """What the ranker is trained with: a mode changes it, the trained model is cached by it."""

    relevance_feature: bool = False
    weight_floor: float | None = None  # None: unweighted; else w = floor + (1 - floor) * pred_gain

    @property
    def features(self) -> list[str]:
        return BASE_FEATURES + (RELEVANCE_FEATURES if self.relevance_feature else [])


class LambdaRanker:
    """Trains one LGBMRanker per spec (cached) on `train` and scores candidate frames."""

    def __init__(
        self, train: pd.DataFrame, gains: Mapping[str, float], seed: int, params: Mapping[str, Any]
    ) -> None:
        labels = list(gains)
        grade = {label: len(labels) - 1 - i for i, label in enumerate(labels)}
        self.train = train.sort_values("query_id", kind="stable").reset_index(drop=True)
        self.grades = self.train["label"].map(grade).to_numpy(dtype=np.int64)
        self.label_gain = [gains[label] for label in reversed(labels)]
        self.seed = seed
        self.params = dict(params)
        self._models: dict[RankerSpec, lgb.LGBMRanker] = {}

    def model(self, spec: RankerSpec) -> lgb.LGBMRanker:
        if spec not in self._models:
            weights = None
            if spec.weight_floor is not None:
                weights = (
                    spec.weight_floor + (1 - spec.weight_floor) * self.train["pred_gain"].to_numpy()
                )
            model = lgb.LGBMRanker(
                objective="lambdarank", label_gain=self.label_gain, random_state=self.seed,
                n_jobs=1, verbose=-1, **self.params,
            )  # fmt: skip
            group = self.train.groupby("query_id", sort=False).size().to_numpy()
            model.fit(self.train[spec.features], self.grades, group=group, sample_weight=weights)
            self._models[spec] = model
        return self._models[spec]

    def scores(self, spec: RankerSpec, candidates: pd.DataFrame) -> np.ndarray:
        return self.model(spec).predict(candidates[spec.features])

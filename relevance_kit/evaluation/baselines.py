"""Honest baselines for the tier table: what a tier must beat to be worth its cost.

Each baseline is built on the catalogue (queries, listings), fitted on training pairs
labelled by the annotator, and predicts pairs in the common prediction contract
(`schemas.prediction_frame`). A stage loops over configured names through `make_baseline`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.evaluation.thresholds import OrdinalThresholds
from relevance_kit.evidence import EVIDENCE_FEATURES, MiniLMCosine, PairEvidence
from relevance_kit.lexical import LEXICAL_FEATURES, CatalogBM25
from relevance_kit.schemas import PAIR_KEY, prediction_frame, require_columns
from relevance_kit.text import DEFAULT_FIELDS


class Baseline(ABC):
    """Common interface: construct on the catalogue, `fit` on labelled pairs, `predict` pairs."""

    name: ClassVar[str]

    def __init__(self, queries: pd.DataFrame, listings: pd.DataFrame) -> None:
        require_columns(queries, ["query_id", "text"], "queries")
        require_columns(listings, ["listing_id"], "listings")
        self.query_text = dict(zip(queries["query_id"], queries["text"]))
        self._listing_ids = set(listings["listing_id"])

    @abstractmethod
    def fit(self, train_pairs: pd.DataFrame, labels: Sequence[str]) -> Self:
        """Learn from `train_pairs` (query_id, listing_id, label); `labels` best to worst."""

    @abstractmethod
    def predict(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Predictions for `pairs` (query_id, listing_id) in the common contract."""

    def _check_pairs(
        self, pairs: pd.DataFrame, where: str, labels: Sequence[str] | None = None
    ) -> None:
        """Fail naming the ids (or labels, for training pairs) that the catalogue or taxonomy
        does not know."""
        require_columns(pairs, PAIR_KEY if labels is None else [*PAIR_KEY, "label"], where)
        unknown_q = sorted(set(pairs["query_id"]) - self.query_text.keys())
        unknown_l = sorted(set(pairs["listing_id"]) - self._listing_ids)
        if unknown_q or unknown_l:
            raise DataError(
                f"{where}: unknown query ids {unknown_q[:5]}, listing ids {unknown_l[:5]}"
            )
        unknown_labels = [] if labels is None else sorted(set(pairs["label"]) - set(labels))
        if unknown_labels:
            raise DataError(f"{where}: labels {unknown_labels} are not in {list(labels)}")


class MajorityBaseline(Baseline):
    """Always the most frequent training label (ties go to the earlier taxonomy label)."""

    name = "majority"

    def fit(self, train_pairs: pd.DataFrame, labels: Sequence[str]) -> Self:
        self._check_pairs(train_pairs, "training pairs", labels)
        counts = train_pairs["label"].value_counts().reindex(list(labels), fill_value=0)
        self.label = str(counts.idxmax())
        return self

    def predict(self, pairs: pd.DataFrame) -> pd.DataFrame:
        self._check_pairs(pairs, "pairs to predict")
        return prediction_frame(pairs, [self.label] * len(pairs))


class ThresholdedScoreBaseline(Baseline):
    """A scalar pair score mapped to labels by ordinal cut points fitted for macro-F1."""

    @abstractmethod
    def pair_scores(self, pairs: pd.DataFrame) -> np.ndarray:
        """One relevance score per row of `pairs` (higher = more relevant)."""

    def fit(self, train_pairs: pd.DataFrame, labels: Sequence[str]) -> Self:
        self._check_pairs(train_pairs, "training pairs", labels)
        scores = self.pair_scores(train_pairs)
        self.thresholds = OrdinalThresholds().fit(scores, train_pairs["label"], labels)
        return self

    def predict(self, pairs: pd.DataFrame) -> pd.DataFrame:
        self._check_pairs(pairs, "pairs to predict")
        scores = self.pair_scores(pairs)
        return prediction_frame(pairs, self.thresholds.predict(scores), scores)


class BM25Baseline(ThresholdedScoreBaseline):
    """Lexical match: the BM25 score of the query against the listing text."""

    name = "bm25"

    def __init__(
        self, queries: pd.DataFrame, listings: pd.DataFrame, fields: Sequence[str] = DEFAULT_FIELDS
    ) -> None:
        super().__init__(queries, listings)
        self.index = CatalogBM25(listings, fields)

    def pair_scores(self, pairs: pd.DataFrame) -> np.ndarray:
        return self.index.pair_scores(pairs, self.query_text)


class MiniLMZeroShot(ThresholdedScoreBaseline):
    """Semantic match without training the encoder: cosine of MiniLM embeddings of the query
    and of `listing_text(listing)` (relevance_kit.evidence.MiniLMCosine, cached across fit and
    predict)."""

    name = "minilm_zero_shot"

    def __init__(
        self,
        queries: pd.DataFrame,
        listings: pd.DataFrame,
        fields: Sequence[str] = DEFAULT_FIELDS,
        **encoder_options: Any,
    ) -> None:
        super().__init__(queries, listings)
        self.cosine = MiniLMCosine(listings, fields, **encoder_options)

    def pair_scores(self, pairs: pd.DataFrame) -> np.ndarray:
        return self.cosine.pair_scores(pairs, self.query_text)


class LearnedLexicalRanker(Baseline):
    """The classic learning-to-rank baseline: gradient-boosted trees (LightGBM) over lexical
    pair features (BM25, query-term overlap, title coverage, query length) and, with
    `semantic: true`, the zero-shot MiniLM cosine, trained on the same annotated pairs as the
    teacher. Trees stop early on held-out training queries, whose expected gain also fits the
    ordinal cut points (never in-sample scores)."""

    name = "ltr_gbdt"

    def __init__(
        self, queries: pd.DataFrame, listings: pd.DataFrame, semantic: bool, n_estimators: int,
        learning_rate: float, num_leaves: int, early_stopping_rounds: int, validation_fraction: float,
        seed: int, threads: int,
    ) -> None:  # fmt: skip
        super().__init__(queries, listings)
        features = EVIDENCE_FEATURES if semantic else LEXICAL_FEATURES
        self.evidence = PairEvidence(listings, features)
        self.early_stopping_rounds, self.validation_fraction, self.seed = (
            early_stopping_rounds,
            validation_fraction,
            seed,
        )
        self.model = lgb.LGBMClassifier(
            n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
            random_state=seed, n_jobs=threads, deterministic=True, force_row_wise=True, verbose=-1,
        )  # fmt: skip

    def features(self, pairs: pd.DataFrame) -> pd.DataFrame:
        return self.evidence.frame(pairs, self.query_text)

    def fit(self, train_pairs: pd.DataFrame, labels: Sequence[str]) -> Self:
        self._check_pairs(train_pairs, "training pairs", labels)
        self.labels = list(labels)
        pairs = train_pairs.reset_index(drop=True)
        split = GroupShuffleSplit(
            n_splits=1, test_size=self.validation_fraction, random_state=self.seed
        )
        fit_idx, val_idx = next(split.split(pairs, groups=pairs["query_id"]))
        X, y = (
            self.features(pairs),
            pairs["label"].map({label: i for i, label in enumerate(self.labels)}),
        )
        self.model.fit(
            X.iloc[fit_idx], y.iloc[fit_idx], eval_X=X.iloc[val_idx], eval_y=y.iloc[val_idx],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )  # fmt: skip
        # An ordinal score (labels are listed best first); only its order matters to the cuts.
        self.gains = np.linspace(1.0, 0.0, len(self.labels))
        val_scores = self._proba(X.iloc[val_idx]) @ self.gains
        self.thresholds = OrdinalThresholds().fit(
            val_scores, pairs["label"].iloc[val_idx], self.labels
        )
        return self

    def predict(self, pairs: pd.DataFrame) -> pd.DataFrame:
        self._check_pairs(pairs, "pairs to predict")
        proba = self._proba(self.features(pairs))
        scores = proba @ self.gains
        return prediction_frame(
            pairs, self.thresholds.predict(scores), scores, dict(zip(self.labels, proba.T))
        )

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities in taxonomy order (a class absent from training gets 0)."""
        proba = np.zeros((len(X), len(self.labels)))
        proba[:, self.model.classes_] = self.model.predict_proba(X)
        return proba


BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (MajorityBaseline, BM25Baseline, MiniLMZeroShot, LearnedLexicalRanker)
}


def make_baseline(
    name: str, queries: pd.DataFrame, listings: pd.DataFrame, **options: Any
) -> Baseline:
    """The baseline registered as `name`, built on the catalogue with its own options."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; allowed: {sorted(BASELINES)}")
    return BASELINES[name](queries, listings, **options)

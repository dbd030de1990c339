"""Where predicted relevance comes from: any tier that yields per-pair label probabilities.

Integration and monitoring only need `PairScorer.score_pairs`; adapters wrap the student's
online scorer (`relevance_kit.student.scorer.RelevanceScorer`) and any tier's predictions
parquet (the prediction contract with p_<label> columns) when it covers the pairs asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.io import read_parquet
from relevance_kit.schemas import PAIR_KEY, prob_column, require_columns


class PairScorer(Protocol):
    """Label probabilities for (query_id, listing_id) pairs."""

    tier: str  # which tier's labels these are (student, teacher, ...): reports say so

    def score_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """`pairs` (query_id, listing_id) -> the same rows with one p_<label> column per
        taxonomy label (rows sum to 1)."""
        ...


class QueryListingScorer(Protocol):
    """The student's online API (see relevance_kit/student/scorer.py)."""

    labels: list[str]

    def score(self, query: str, listing_ids: Sequence[str]) -> np.ndarray: ...


class OnlineScorerPairs:
    """A PairScorer over a scorer of (query text, listing ids), one call per query."""

    def __init__(
        self,
        scorer: QueryListingScorer,
        query_text: Mapping[str, str],
        labels: Sequence[str],
        tier: str = "student",
    ) -> None:
        _check_labels(list(scorer.labels), labels, f"the {tier} scorer")
        self.scorer = scorer
        self.query_text = query_text
        self.labels = list(labels)
        self.tier = tier
        self._order = [list(scorer.labels).index(label) for label in self.labels]

    def score_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        require_columns(pairs, PAIR_KEY, "pairs to score")
        unknown = sorted(set(pairs["query_id"]) - set(self.query_text))
        if unknown:
            raise DataError(f"pairs to score: no query text for query ids {unknown[:5]}")
        probs = np.zeros((len(pairs), len(self.labels)))
        for qid, idx in pairs.groupby("query_id", sort=False).indices.items():
            ids = pairs["listing_id"].iloc[idx].astype(str).tolist()
            scored = np.asarray(self.scorer.score(self.query_text[qid], ids), dtype=np.float64)
            if scored.shape != (len(ids), len(self.labels)):
                raise DataError(
                    f"the {self.tier} scorer returned shape {scored.shape} for {len(ids)} listings"
                )
            probs[idx] = scored[:, self._order]
        return _with_probs(pairs, probs, self.labels)


class PredictionsPairs:
    """A PairScorer over a tier's predictions file; every pair asked for must be in it."""

    def __init__(
        self, predictions: pd.DataFrame, labels: Sequence[str], tier: str, where: str
    ) -> None:
        cols = [prob_column(label) for label in labels]
        require_columns(predictions, [*PAIR_KEY, *cols], where)
        self.table = predictions.set_index(PAIR_KEY)[cols]
        self.labels = list(labels)
        self.tier = tier
        self.where = where

    def score_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        require_columns(pairs, PAIR_KEY, "pairs to score")
        keys = pd.MultiIndex.from_frame(pairs[PAIR_KEY])
        missing = ~keys.isin(self.table.index)
        if missing.any():
            first = pairs[PAIR_KEY][missing].head(3).to_dict("records")
            raise DataError(
                f"{self.where}: has no prediction for {int(missing.sum())} of {len(pairs)} pairs "
                f"(e.g. {first}); score them with a scorer that covers them (e.g. the student)"
            )
        return _with_probs(pairs, self.table.loc[keys].to_numpy(dtype=np.float64), self.labels)


def load_scorer(
    spec: str,
    *,
    labels: Sequence[str],
    query_text: Mapping[str, str],
    models_dir: str | Path,
    student_name: str,
) -> PairScorer:
    """`student` (the exported student at models/student/<name>/export) or the path of a
    predictions parquet (its stem names the tier)."""
    if spec == "student":
        try:
            from relevance_kit.student.scorer import RelevanceScorer
        except ImportError as exc:
            raise ConfigError(
                f"scorer 'student': the student package is not available ({exc})"
            ) from None
        export = Path(models_dir) / "student" / student_name / "export"
        if not export.exists():
            raise DataError(
                f"scorer 'student': no exported student at {export}; run the student stage first"
            )
        return OnlineScorerPairs(RelevanceScorer.load(export), query_text, labels, "student")
    path = Path(spec)
    if not path.exists():
        raise DataError(f"scorer {spec!r}: predictions file not found")
    return PredictionsPairs(read_parquet(path), labels, path.stem, str(path))


def _with_probs(pairs: pd.DataFrame, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    out = pairs[PAIR_KEY].reset_index(drop=True).copy()
    for j, label in enumerate(labels):
        out[prob_column(label)] = probs[:, j]
    return out


def _check_labels(found: list[str], wanted: Sequence[str], who: str) -> None:
    if sorted(found) != sorted(wanted):
        raise DataError(f"{who} predicts labels {found}, but the taxonomy has {list(wanted)}")

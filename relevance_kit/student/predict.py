"""Golden-set predictions of the student, through the served scorer (the exported artifact,
not the training model), in the common prediction contract."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from relevance_kit.schemas import PAIR_KEY, expected_gain, prediction_frame
from relevance_kit.student.scorer import RelevanceScorer


def predict_pairs(
    scorer: RelevanceScorer,
    pairs: pd.DataFrame,
    query_text: Mapping[str, str],
    gains: Mapping[str, float],
) -> pd.DataFrame:
    """One scorer call per query; score = expected gain under the predicted distribution."""
    pairs = pairs[PAIR_KEY].reset_index(drop=True)
    probs = np.zeros((len(pairs), len(scorer.labels)))
    for query_id, rows in tqdm(
        pairs.groupby("query_id").indices.items(), desc="student predict", unit="query"
    ):
        probs[rows] = scorer.score(query_text[query_id], pairs["listing_id"].iloc[rows].tolist())
    labels = [scorer.labels[i] for i in probs.argmax(axis=1)]
    frame = prediction_frame(
        pairs, labels, probabilities={label: probs[:, i] for i, label in enumerate(scorer.labels)}
    )
    frame["score"] = expected_gain(frame, gains)
    return frame

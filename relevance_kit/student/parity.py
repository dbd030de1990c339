"""Parity of the served path (ONNX query encoder, split head, precomputed index) with the
trained model (PyTorch towers, full head) on the same pairs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

from relevance_kit.config import StudentConfig
from relevance_kit.student.data import catalogue_texts
from relevance_kit.student.export import load_student, tokenize
from relevance_kit.student.scorer import RelevanceScorer
from relevance_kit.student.towers import TwoTowerStudent, load_tokenizer


@torch.no_grad()
def reference_probabilities(
    model: TwoTowerStudent,
    cfg: StudentConfig,
    tokenizer: PreTrainedTokenizerBase,
    query: str,
    listing_texts: list[str],
) -> np.ndarray:
    """The trained model's probabilities for one query against listings given as text."""
    q = tokenize(tokenizer, [query] * len(listing_texts), cfg.query_max_length)
    listing = tokenize(tokenizer, listing_texts, cfg.listing_max_length)
    return torch.softmax(model(q, listing), dim=-1).numpy()


def parity_report(
    checkpoint: str | Path,
    scorer: RelevanceScorer,
    pairs: pd.DataFrame,
    query_text: Mapping[str, str],
    listings: pd.DataFrame,
    current: StudentConfig,
    n_queries: int = 5,
) -> dict[str, float]:
    """Max |p_served - p_trained| and argmax agreement over the pairs of the first
    `n_queries` queries, for the query encoder variant `scorer` loaded."""
    model, cfg, _ = load_student(checkpoint, current)
    tokenizer = load_tokenizer(cfg.encoder)
    texts = catalogue_texts(
        listings[listings["listing_id"].isin(pairs["listing_id"])],
        scorer.manifest["listing_fields"],
    )
    diffs, agree, n = [], 0, 0
    for query_id in sorted(pairs["query_id"].unique())[:n_queries]:
        ids = pairs.loc[pairs["query_id"] == query_id, "listing_id"].tolist()
        served = scorer.score(query_text[query_id], ids)
        trained = reference_probabilities(
            model, cfg, tokenizer, query_text[query_id], [texts[i] for i in ids]
        )
        diffs.append(np.abs(served - trained).max())
        agree += int((served.argmax(axis=1) == trained.argmax(axis=1)).sum())
        n += len(ids)
    return {
        "parity_max_abs_diff": float(max(diffs)),
        "parity_argmax_agreement": agree / n,
        "parity_pairs": n,
    }

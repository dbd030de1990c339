"""Threshold-free measures of a tier on the golden set: how well its score ranks the pairs,
whatever thresholds or decision biases turn that score into labels.

| measure              | what it says                                             | input             |
| -------------------- | -------------------------------------------------------- | ----------------- |
| AUC best vs rest     | a best-label pair scores above a lesser one (0.5: chance) | `score` (higher = more relevant) |
| AUC worst vs rest    | a worst-label pair scores below a better one              | `score`, negated  |
| nDCG@k               | per-query ranking by score against the taxonomy gains     | `score`, gains    |

Each comes with a percentile interval over the same query resamples as the F1 intervals
(`metrics.query_resample_weights`: whole queries, with replacement), computed in one pass: the
AUC as a weighted Mann-Whitney statistic, nDCG as a weighted mean of per-query values.
Measured on the pairs the tier scored; a tier with no score (majority) has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import ndcg_score

from relevance_kit.evaluation.metrics import percentile_interval, query_resample_weights


def weighted_auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of `positive` (N,) by `score` (N,) under each row of pair weights (R, N): the
    share of weighted (positive, negative) pairs ordered correctly, ties counted half."""
    order = np.argsort(score, kind="stable")
    s, pos, w = score[order], positive[order], weights[:, order]
    pos_w, neg_w = w * pos, w * ~pos
    _, starts = np.unique(s, return_index=True)  # s is sorted: the first pair of each tie group
    group_pos = np.add.reduceat(pos_w, starts, axis=1)
    group_neg = np.add.reduceat(neg_w, starts, axis=1)
    below = np.cumsum(group_neg, axis=1) - group_neg  # negatives scored strictly lower
    correct = (group_pos * (below + 0.5 * group_neg)).sum(axis=1)
    total = pos_w.sum(axis=1) * neg_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / total


def per_query_ndcg(
    frame: pd.DataFrame, gains: Mapping[str, float], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """nDCG@k of each query (sorted ids) ranked by score, and which queries it is defined for:
    at least two pairs and a positive ideal gain (else every ranking scores the same)."""
    values, defined = [], []
    for _, group in frame.groupby("query_id", sort=True):
        gain = group["y_true"].map(gains).to_numpy(dtype=float)
        ok = len(group) > 1 and gain.max() > 0
        values.append(ndcg_score([gain], [group["score"].to_numpy(float)], k=k) if ok else np.nan)
        defined.append(ok)
    return np.asarray(values), np.asarray(defined)


def threshold_free(
    frame: pd.DataFrame,
    labels: Sequence[str],
    gains: Mapping[str, float],
    k: int,
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> dict | None:
    """AUC of the best and of the worst label vs the rest, and nDCG@k, each as {estimate,
    low, high}, on the pairs of `frame` (query_id, y_true, score) that have a score."""
    scored = frame[frame["score"].notna()]
    if scored.empty:
        return None
    query_ids, query_idx = np.unique(scored["query_id"].to_numpy(dtype=str), return_inverse=True)
    resamples = query_resample_weights(len(query_ids), n_resamples, seed)
    ones = np.ones((1, len(query_ids)))
    score, y_true = scored["score"].to_numpy(float), scored["y_true"].to_numpy(dtype=object)

    def interval(estimate: float, stats: np.ndarray) -> dict[str, float]:
        low, high = percentile_interval(stats, confidence)
        return {"estimate": float(estimate), "low": low, "high": high}

    def auc(label: str, sign: float) -> dict[str, float]:
        positive = y_true == label
        return interval(
            weighted_auc(positive, sign * score, ones[:, query_idx])[0],
            weighted_auc(positive, sign * score, resamples[:, query_idx]),
        )

    ndcg, defined = per_query_ndcg(scored, gains, k)
    w = resamples[:, defined]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg_stats = (w @ ndcg[defined]) / w.sum(axis=1)
    best, worst = labels[0], labels[-1]
    return {
        "scored_pairs": len(scored),
        "auc_vs_rest": {best: auc(best, 1.0), worst: auc(worst, -1.0)},
        f"ndcg_at_{k}": interval(float(np.mean(ndcg[defined])), ndcg_stats),
        "ndcg_queries": int(defined.sum()),
    }

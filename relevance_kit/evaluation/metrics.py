"""Classification metrics over a golden set, with query-level (cluster) bootstrap intervals.

Golden pairs are sampled by query, and pairs of one query share its difficulty, so resampling
pairs would understate the uncertainty: every bootstrap here resamples whole queries.

Each resample is a sum of per-query confusion matrices weighted by how often the query was
drawn, so metrics are computed from confusion counts. Those matrices have K rows (true label,
taxonomy order) and K+1 columns: the last counts pairs the tier did not predict, which are
errors (a miss for their true class, a false positive for none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from relevance_kit.errors import DataError

NOT_PREDICTED = "not_predicted"

# A metric maps confusion counts of shape (..., K, K+1) to values of shape (...).
Metric = Callable[[np.ndarray], np.ndarray]


def classification_report(
    y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[str]
) -> dict:
    """Point metrics of predictions against golden labels, in taxonomy label order.

    A missing prediction (None/NaN) counts as wrong; its pairs are the `not_predicted` counts.
    """
    labels = list(labels)
    y_true_arr = np.asarray(y_true, dtype=object)
    y_pred_arr = _fill_missing(y_pred)
    _label_codes(y_true_arr, y_pred_arr, labels)  # validates both
    all_labels = [*labels, NOT_PREDICTED]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true_arr, y_pred_arr, labels=labels, zero_division=0
    )
    cm = confusion_matrix(y_true_arr, y_pred_arr, labels=all_labels)
    k = len(labels)
    return {
        "n": len(y_true_arr),
        "macro_f1": float(np.mean(f1)),
        "f1": dict(zip(labels, f1.tolist())),
        "precision": dict(zip(labels, precision.tolist())),
        "recall": dict(zip(labels, recall.tolist())),
        "support": dict(zip(labels, support.tolist())),
        "accuracy": float(accuracy_score(y_true_arr, y_pred_arr)),
        "cohen_kappa": float(cohen_kappa_score(y_true_arr, y_pred_arr, labels=all_labels)),
        "confusion_matrix": cm[:k, :k].tolist(),
        "not_predicted": dict(zip(labels, cm[:k, k].tolist())),
    }


# --- metrics on confusion counts (vectorised over leading axes) ---------------------------


def _counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, true-label totals and predicted-label totals per class."""
    k = cm.shape[-2]
    tp = np.diagonal(cm[..., :k], axis1=-2, axis2=-1)
    return tp, cm.sum(axis=-1), cm[..., :k].sum(axis=-2)


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 per class, shape (..., K); 0 for a class absent from truth and predictions (as sklearn)."""
    tp, n_true, n_pred = _counts(cm)
    denom = n_true + n_pred
    return np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)


def macro_f1(cm: np.ndarray) -> np.ndarray:
    return per_class_f1(cm).mean(axis=-1)


def class_f1(index: int) -> Metric:
    """The F1 of one class (by taxonomy index) as a metric."""
    return lambda cm: per_class_f1(cm)[..., index]


def accuracy(cm: np.ndarray) -> np.ndarray:
    tp, n_true, _ = _counts(cm)
    return tp.sum(axis=-1) / n_true.sum(axis=-1)


def cohen_kappa(cm: np.ndarray) -> np.ndarray:
    """Unweighted kappa (as sklearn); NaN when chance agreement is 1."""
    tp, n_true, n_pred = _counts(cm)
    n = n_true.sum(axis=-1)
    observed = tp.sum(axis=-1) / n
    expected = (n_true * n_pred).sum(axis=-1) / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return (observed - expected) / (1 - expected)


# --- query-level bootstrap ------------------------------------------------------------------


def confusion_by_query(frame: pd.DataFrame, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-query confusion counts of a frame with query_id, y_true, y_pred.

    Returns the sorted query ids and counts of shape (Q, K, K+1).
    """
    labels = list(labels)
    k = len(labels)
    true_idx, pred_idx = _label_codes(
        frame["y_true"].to_numpy(dtype=object), _fill_missing(frame["y_pred"]), labels
    )
    query_ids, query_idx = np.unique(frame["query_id"].to_numpy(dtype=str), return_inverse=True)
    flat = (query_idx * k + true_idx) * (k + 1) + pred_idx
    counts = np.bincount(flat, minlength=len(query_ids) * k * (k + 1))
    return query_ids, counts.reshape(len(query_ids), k, k + 1)


def bootstrap_ci(
    frame: pd.DataFrame,
    metric_fn: Metric,
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
    *,
    labels: Sequence[str],
) -> dict[str, float]:
    """Percentile interval of `metric_fn` over resamples of whole queries (with replacement)."""
    _, cms = confusion_by_query(frame, labels)
    weights = query_resample_weights(len(cms), n_resamples, seed)
    low, high = percentile_interval(_on_resamples(metric_fn, weights, cms), confidence)
    return {"estimate": float(metric_fn(cms.sum(axis=0))), "low": low, "high": high}


def paired_bootstrap(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    metric_fn: Metric,
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
    *,
    labels: Sequence[str],
) -> dict[str, float]:
    """Difference metric(a) - metric(b) of two tiers on the same golden pairs, with the same
    query resamples for both, a percentile interval and a two-sided bootstrap p-value."""
    queries_a, cms_a = confusion_by_query(frame_a, labels)
    queries_b, cms_b = confusion_by_query(frame_b, labels)
    if not (np.array_equal(queries_a, queries_b) and np.array_equal(cms_a.sum(-1), cms_b.sum(-1))):
        raise DataError("paired bootstrap needs both tiers scored on the same golden pairs")
    weights = query_resample_weights(len(cms_a), n_resamples, seed)
    diffs = _on_resamples(metric_fn, weights, cms_a) - _on_resamples(metric_fn, weights, cms_b)
    diff = float(metric_fn(cms_a.sum(axis=0)) - metric_fn(cms_b.sum(axis=0)))
    low, high = percentile_interval(diffs, confidence)
    other_side = np.count_nonzero(diffs <= 0 if diff >= 0 else diffs >= 0)
    p_value = min(1.0, 2 * (other_side + 1) / (n_resamples + 1))
    return {"diff": diff, "low": low, "high": high, "p_value": p_value}


def query_resample_weights(n_queries: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each query is drawn in each resample of n_queries with replacement
    (a multinomial count vector has exactly that distribution); shape (R, Q)."""
    if n_queries == 0:
        raise DataError("bootstrap needs at least one query")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_queries, np.full(n_queries, 1.0 / n_queries), size=n_resamples)


def _on_resamples(metric_fn: Metric, weights: np.ndarray, cms: np.ndarray) -> np.ndarray:
    """The metric on each resample: per-query counts summed with the resample's weights."""
    return metric_fn(np.tensordot(weights, cms, axes=1))


def percentile_interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def _fill_missing(y_pred: Sequence[Any]) -> np.ndarray:
    """Predictions as an object array with missing ones (None/NaN) marked NOT_PREDICTED."""
    values = pd.Series(y_pred, dtype=object)
    return values.where(values.notna(), NOT_PREDICTED).to_numpy(dtype=object)


def _label_codes(
    y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Taxonomy indices of true and predicted labels (K for not predicted); unknown labels fail."""
    index = {label: i for i, label in enumerate(labels)}
    unknown_true = sorted({str(v) for v in y_true if v not in index})
    unknown_pred = sorted({str(v) for v in y_pred if v not in index and v != NOT_PREDICTED})
    if unknown_true or unknown_pred:
        raise DataError(
            f"labels outside the taxonomy {labels}: golden {unknown_true}, predicted {unknown_pred}"
        )
    index[NOT_PREDICTED] = len(labels)
    return (
        np.fromiter((index[v] for v in y_true), dtype=np.int64, count=len(y_true)),
        np.fromiter((index[v] for v in y_pred), dtype=np.int64, count=len(y_pred)),
    )

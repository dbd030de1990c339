"""validate_annotator: the annotator against golden, and the gate that decides whether it
may label the pool. Also the human case, where there is nothing to validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relevance_kit.config import AnnotatorGate
from relevance_kit.errors import RelevanceKitError
from relevance_kit.evaluation.metrics import classification_report
from relevance_kit.io import atomic_path

# Self-consistency buckets: does a more consistent answer agree more often with golden?
CONSISTENCY_BUCKETS = (0.0, 0.5, 0.75, 1.0)


class GateFailed(RelevanceKitError):
    """The annotator is not aligned enough with golden to label the pool."""


def golden_subset(golden: pd.DataFrame, gate: AnnotatorGate, seed: int) -> pd.DataFrame:
    """A seeded sample of golden queries, then of pairs within each (caps what validation
    spends); queries stay whole units, so the query-level bootstrap stays valid."""
    queries = pd.Series(sorted(golden["query_id"].unique()))
    if gate.max_queries is not None:
        queries = queries.sample(n=min(gate.max_queries, len(queries)), random_state=seed)
    chosen = golden[golden["query_id"].isin(set(queries))]
    if gate.max_pairs_per_query is not None:
        chosen = (
            chosen.sample(frac=1.0, random_state=seed)
            .groupby("query_id")
            .head(gate.max_pairs_per_query)
        )
    return chosen.sort_index().reset_index(drop=True)


def validation_report(
    golden: pd.DataFrame, predictions: pd.DataFrame, labels: list[str]
) -> dict[str, Any]:
    """Macro-F1, per-class F1, kappa, confusion matrix (unresolved pairs count as errors) and
    agreement by self-consistency bucket."""
    merged = golden[["query_id", "listing_id", "label"]].merge(
        predictions, on=["query_id", "listing_id"], suffixes=("_true", "_pred")
    )
    report = classification_report(merged["label_true"], merged["label_pred"], labels)
    merged["agree"] = merged["label_true"] == merged["label_pred"]
    bucket = pd.cut(merged["self_consistency"], CONSISTENCY_BUCKETS, include_lowest=True)
    by_bucket = [
        {
            "self_consistency": str(interval),
            "pairs": len(group),
            "agreement": float(group["agree"].mean()) if len(group) else None,
        }
        for interval, group in merged.groupby(bucket, observed=False)
    ]
    return {
        **report,
        "n_queries": int(merged["query_id"].nunique()),
        "unresolved": int(merged["label_pred"].isna().sum()),
        "routed_to_review": int((merged["route"] == "review").sum()),
        "agreement_by_self_consistency": by_bucket,
    }


def check_gate(report: dict[str, Any], gate: AnnotatorGate) -> dict[str, Any]:
    """The gate verdict: passed, and each threshold missed with the knob that sets it."""
    misses = []
    if report["macro_f1"] < gate.min_macro_f1:
        misses.append(
            f"macro-F1 {report['macro_f1']:.3f} < annotator.gate.min_macro_f1 = {gate.min_macro_f1}"
        )
    if report["cohen_kappa"] < gate.min_kappa:
        misses.append(
            f"kappa {report['cohen_kappa']:.3f} < annotator.gate.min_kappa = {gate.min_kappa}"
        )
    return {
        "passed": not misses,
        "misses": misses,
        "min_macro_f1": gate.min_macro_f1,
        "min_kappa": gate.min_kappa,
        "on_fail": gate.on_fail,
    }


def gate_message(annotator: str, n_pairs: int, misses: list[str]) -> str:
    return (
        f"annotator {annotator!r} is not aligned with golden on {n_pairs} pairs: {'; '.join(misses)}. "
        "The pool is NOT labelled. Improve the annotator (annotator.model, annotator.samples, "
        "prompt.n_shots, prompt templates) or, knowingly, lower annotator.gate.* "
        "(annotator.gate.on_fail: warn labels anyway)"
    )


def write_tier_note(path: str | Path, note: str) -> None:
    """A predictions file that says why the tier has no predictions (e.g. annotator=human,
    whose labels ARE golden): zero rows, the reason in `df.attrs['tier_note']` (pandas keeps
    attrs in parquet metadata), so evaluate skips it instead of scoring it."""
    frame = pd.DataFrame(
        {
            "query_id": pd.Series(dtype=str),
            "listing_id": pd.Series(dtype=str),
            "label": pd.Series(dtype=str),
            "score": pd.Series(dtype=np.float64),
        }
    )
    frame.attrs["tier_note"] = note
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def plot_agreement(report: dict[str, Any], path: str | Path, title: str) -> None:
    """Agreement with golden per self-consistency bucket, pair counts on the bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report["agreement_by_self_consistency"]
    fig = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = ax.bar([r["self_consistency"] for r in rows], [r["agreement"] or 0.0 for r in rows])
    ax.bar_label(bars, [f"n={r['pairs']}" for r in rows])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("self-consistency")
    ax.set_ylabel("agreement with golden")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)

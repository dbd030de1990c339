"""Inter-annotator agreement on the golden pairs: how far the human labels can be trusted, and
the ceiling an LLM annotator can reasonably be asked to reach."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score

from relevance_kit.golden.aggregate import validate_judgments, vote_counts
from relevance_kit.schemas import PAIR_KEY


def agreement_report(
    judgments: pd.DataFrame, labels: Sequence[str], where: str | Path | None = None
) -> dict[str, Any]:
    """Agreement metrics as a JSON-ready dict; a metric that cannot be computed is None and
    `note` says why (e.g. one annotator per pair, as in ESCI).

    Cohen's kappa (plain and linearly weighted by the taxonomy order) needs exactly two
    annotators overall; Krippendorff's alpha (nominal and ordinal) takes any number and
    missing judgments.
    """
    validate_judgments(judgments, labels, where)
    counts = vote_counts(judgments, labels)
    multi = counts[counts.sum(axis=1) >= 2]
    n_annotators = int(judgments["annotator_id"].nunique())
    report: dict[str, Any] = {
        "n_pairs": len(counts),
        "n_annotators": n_annotators,
        "pairs_with_2plus": len(multi),
        "disagreement_rate": None,
        "cohen_kappa": None,
        "cohen_kappa_linear": None,
        "cohen_kappa_pairs": 0,
        "krippendorff_alpha_nominal": None,
        "krippendorff_alpha_ordinal": None,
        "note": None,
    }
    if multi.empty:
        report["note"] = (
            "no pair has more than one annotator (one label per pair, as in ESCI): agreement "
            "cannot be measured; have 2+ annotators judge at least part of the golden set"
        )
        return report
    report["disagreement_rate"] = float((multi.max(axis=1) < multi.sum(axis=1)).mean())
    for level in ("nominal", "ordinal"):
        report[f"krippendorff_alpha_{level}"] = _alpha(multi, level)
    notes = []
    if report["krippendorff_alpha_nominal"] is None:
        notes.append(
            "every judgment on a shared pair has the same label: chance-corrected "
            "agreement is undefined"
        )
    if n_annotators == 2:
        report.update(_cohen(judgments, labels))
    else:
        notes.append(
            f"Cohen's kappa needs exactly two annotators overall ({n_annotators} "
            "found); see Krippendorff's alpha"
        )
    report["note"] = "; ".join(notes) or None
    return report


def recorded_disagreement(judgments: pd.DataFrame) -> dict[str, Any]:
    """The disagreement the dataset itself records when it holds a mean grade per pair, not
    each rater's grade (Home Depot): the share of pairs whose raters certainly disagreed (a
    mean that is not a whole grade; a whole mean can hide disagreement, so a lower bound).
    Empty when no judgment says (the column is absent or null)."""
    if "raters_disagreed" not in judgments or judgments["raters_disagreed"].isna().all():
        return {}
    flags = (
        judgments.dropna(subset=["raters_disagreed"]).groupby(PAIR_KEY)["raters_disagreed"].any()
    )
    return {
        "raters_disagreed_share": float(flags.mean()),
        "raters_disagreed_pairs": int(flags.sum()),
        "raters_disagreed_of": len(flags),
        "raters_disagreed_note": (
            "share of golden pairs whose mean grade is not a whole grade: their raters disagreed "
            "(a lower bound: a whole mean can hide disagreement); the dataset holds the mean, "
            "not each rater's grade, so kappa and alpha cannot be computed from it"
        ),
    }


def _cohen(judgments: pd.DataFrame, labels: Sequence[str]) -> dict[str, Any]:
    """Kappa on the pairs both annotators labelled; `labels` order sets the linear weights."""
    both = judgments.pivot(index=PAIR_KEY, columns="annotator_id", values="label").dropna()
    first, second = both.iloc[:, 0], both.iloc[:, 1]
    return {
        "cohen_kappa": _finite(cohen_kappa_score, first, second, labels=list(labels)),
        "cohen_kappa_linear": _finite(
            cohen_kappa_score, first, second, labels=list(labels), weights="linear"
        ),
        "cohen_kappa_pairs": len(both),
    }


def _alpha(counts: pd.DataFrame, level: str) -> float | None:
    """Krippendorff's alpha from per-pair vote counts.

    Alpha depends only on how many annotators gave each label to each unit, so the
    (pairs × labels) count table is passed instead of an (annotators × pairs) matrix that
    would be mostly NaN once many annotators share the work.
    """
    return _finite(
        krippendorff.alpha,
        value_counts=counts.to_numpy(),
        value_domain=np.arange(counts.shape[1]),  # codes in taxonomy order, for "ordinal"
        level_of_measurement=level,
    )


def _finite(metric: Any, *args: Any, **kwargs: Any) -> float | None:
    """The metric as a float, or None where it is undefined (e.g. every label the same)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # krippendorff: 0/0
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # sklearn: kappa undefined
        value = float(metric(*args, **kwargs))
    return value if math.isfinite(value) else None

"""The tier table: every tier scored on the same golden pairs, with query-level bootstrap
intervals and a paired comparison against a reference tier.

Predictions follow one contract for every tier (`relevance_kit.schemas.prediction_frame`).
A golden pair a tier did not predict (absent, or label NaN) counts as an error and is
reported as lost coverage, so a tier cannot look better by abstaining on hard pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.evaluation.metrics import (
    bootstrap_ci,
    class_f1,
    classification_report,
    macro_f1,
    paired_bootstrap,
)
from relevance_kit.evaluation.ranking_metrics import threshold_free
from relevance_kit.schemas import (
    LABELLED_PAIRS,
    PAIR_KEY,
    PREDICTION_COLUMNS,
    require_columns,
)


def tier_table(
    golden: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    labels: Sequence[str],
    n_resamples: int,
    seed: int,
    reference_tier: str | Sequence[str],
    confidence: float = 0.95,
    *,
    gains: Mapping[str, float],
    ndcg_k: int = 10,
) -> dict:
    """Score every tier on `golden` (query_id, listing_id, label): F1s of its labels and,
    where it has a score, the threshold-free measures of `ranking_metrics` (nDCG@`ndcg_k`
    with the taxonomy `gains`).

    `reference_tier` is a tier name, or several names (e.g. the baselines) of which the one
    with the highest macro-F1 becomes the reference for the paired Δ macro-F1.
    """
    labels = list(labels)
    require_columns(golden, LABELLED_PAIRS, "golden set")
    if golden.duplicated(PAIR_KEY).any():
        raise DataError("golden set: duplicate (query_id, listing_id) pairs")
    frames = {
        name: _scored_frame(golden, pred, f"predictions of tier {name!r}")
        for name, pred in predictions.items()
    }
    boot = {"n_resamples": n_resamples, "seed": seed, "confidence": confidence, "labels": labels}
    tiers = {name: _tier_row(frame, labels, boot) for name, frame in frames.items()}
    for name, frame in frames.items():
        tiers[name]["threshold_free"] = threshold_free(
            frame, labels, gains, ndcg_k, n_resamples, seed, confidence
        )
    reference = _pick_reference(reference_tier, tiers)
    for name, row in tiers.items():
        row["vs_reference"] = (
            None
            if name == reference
            else paired_bootstrap(frames[name], frames[reference], macro_f1, **boot)
        )
    return {
        "labels": labels,
        "n_pairs": len(golden),
        "n_queries": int(golden["query_id"].nunique()),
        "n_resamples": n_resamples,
        "seed": seed,
        "confidence": confidence,
        "reference": reference,
        "ndcg_k": ndcg_k,
        "tiers": tiers,
    }


def _scored_frame(golden: pd.DataFrame, pred: pd.DataFrame, where: str) -> pd.DataFrame:
    """Golden pairs with the tier's label as y_pred and its score (NaN where it predicted
    nothing)."""
    require_columns(pred, PREDICTION_COLUMNS, where)
    if pred.duplicated(PAIR_KEY).any():
        raise DataError(f"{where}: duplicate (query_id, listing_id) pairs")
    merged = golden[[*PAIR_KEY, "label"]].merge(
        pred[[*PAIR_KEY, "label", "score"]], on=PAIR_KEY, how="left", suffixes=("_true", "_pred")
    )
    return merged.rename(columns={"label_true": "y_true", "label_pred": "y_pred"})


def _tier_row(frame: pd.DataFrame, labels: list[str], boot: dict) -> dict:
    report = classification_report(frame["y_true"], frame["y_pred"], labels)
    n_predicted = int(frame["y_pred"].notna().sum())
    return {
        "n_pairs": len(frame),
        "n_predicted": n_predicted,
        "coverage": n_predicted / len(frame) if len(frame) else float("nan"),
        "macro_f1": bootstrap_ci(frame, macro_f1, **boot),
        "f1": {label: bootstrap_ci(frame, class_f1(i), **boot) for i, label in enumerate(labels)},
        "precision": report["precision"],
        "recall": report["recall"],
        "support": report["support"],
        "accuracy": report["accuracy"],
        "cohen_kappa": report["cohen_kappa"],
        "confusion_matrix": report["confusion_matrix"],
        "not_predicted": report["not_predicted"],
    }


def _pick_reference(reference_tier: str | Sequence[str], tiers: dict[str, dict]) -> str:
    names = [reference_tier] if isinstance(reference_tier, str) else list(reference_tier)
    unknown = [n for n in names if n not in tiers]
    if unknown or not names:
        raise DataError(f"reference tier(s) {unknown or names} not among the tiers {list(tiers)}")
    return max(names, key=lambda n: tiers[n]["macro_f1"]["estimate"])


# --- outputs ------------------------------------------------------------------------------


def render_markdown(table: dict) -> str:
    """The tier table as markdown (reports/tiers.md): one row per tier."""
    labels = table["labels"]
    pct = round(table["confidence"] * 100)
    header = (
        ["tier", "pairs predicted", f"macro-F1 [{pct}% CI]"]
        + [f"F1 {label}" for label in labels]
        + ["accuracy", "kappa", f"Δ macro-F1 vs {table['reference']} [{pct}% CI]", "p"]
        + [f"AUC {labels[0]} vs rest", f"AUC {labels[-1]} vs rest", f"nDCG@{table['ndcg_k']}"]
    )
    lines = [
        "# Tiers on the golden set",
        "",
        (
            f"{table['n_pairs']} golden pairs over {table['n_queries']} queries. Intervals: "
            f"{table['n_resamples']} bootstrap resamples of queries (seed {table['seed']}); "
            "Δ is a paired bootstrap on the same resamples. "
            "Pairs a tier did not predict count as errors. AUC and nDCG rank the pairs by the "
            "tier's score, whatever its thresholds (— : the tier has no score)."
        ),
    ]
    rows = []
    for name, row in table["tiers"].items():
        delta = row["vs_reference"]
        cells = (
            [name, f"{row['n_predicted']}/{row['n_pairs']}", _ci(row["macro_f1"])]
            + [_ci(row["f1"][label]) for label in labels]
            + [f"{row['accuracy']:.3f}", f"{row['cohen_kappa']:.3f}"]
            + (
                ["reference", ""]
                if delta is None
                else [
                    f"{delta['diff']:+.3f} [{delta['low']:+.3f}, {delta['high']:+.3f}]",
                    f"{delta['p_value']:.3f}",
                ]
            )
            + threshold_free_cells(row["threshold_free"], labels, table["ndcg_k"])
        )
        rows.append(cells)
    lines += [
        "",
        pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True),
    ]
    return "\n".join(lines) + "\n"


def threshold_free_cells(measures: dict | None, labels: Sequence[str], k: int) -> list[str]:
    """AUC best vs rest, AUC worst vs rest, nDCG@k as table cells ("—" without a score)."""
    if measures is None:
        return ["—"] * 3
    auc = measures["auc_vs_rest"]
    return [_ci(auc[labels[0]]), _ci(auc[labels[-1]]), _ci(measures[f"ndcg_at_{k}"])]


def _ci(value: dict[str, float]) -> str:
    return f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"

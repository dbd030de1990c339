"""The integration experiment end to end: candidates and features for held-out and training
queries, predicted relevance from a scorer, the simulated search of every arm, and the A/B
comparison of each arm against the popularity baseline (and the ranker modes against the
ranker without relevance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from relevance_kit.integrate.abtest import analyse_log, compare_arms
from relevance_kit.integrate.candidates import add_features, build_candidates, popularity_baseline
from relevance_kit.integrate.modes import Mode, SearchState
from relevance_kit.integrate.ranker import LambdaRanker
from relevance_kit.integrate.results import request_metrics
from relevance_kit.integrate.scorers import PairScorer
from relevance_kit.integrate.simulate import BASELINE, RANKER, simulate
from relevance_kit.io import atomic_path
from relevance_kit.lexical import CatalogBM25
from relevance_kit.schemas import METRICS, PAIR_KEY, expected_gain, prob_column

METRIC_TITLES = {
    "pct_relevant": "% fully relevant",
    "pct_irrelevant": "% irrelevant",
    "ndcg": "nDCG",
}


def with_predictions(
    pairs: pd.DataFrame, scorer: PairScorer, gains: Mapping[str, float]
) -> pd.DataFrame:
    """`pairs` with the scorer's p_<label>, pred_gain (expected gain) and pred_worst."""
    scored = scorer.score_pairs(pairs[PAIR_KEY])
    out = pairs.reset_index(drop=True).join(scored.drop(columns=PAIR_KEY))
    out["pred_gain"] = expected_gain(out, gains)
    out["pred_worst"] = out[prob_column(list(gains)[-1])]
    return out


def run_simulation(
    *,
    queries: pd.DataFrame,
    listings: pd.DataFrame,
    held_out: pd.DataFrame,
    train: pd.DataFrame,
    scorer: PairScorer,
    modes: Sequence[Mode],
    gains: Mapping[str, float],
    k: int,
    retrieve_k: int,
    bm25_weight: float,
    popularity_weight: float,
    ranker_params: Mapping[str, Any],
    seed: int,
) -> pd.DataFrame:
    """The result log of every arm on the held-out queries (`held_out`: their judged pairs);
    the ranker learns from `train` (judged pairs of other queries)."""
    index = CatalogBM25(listings)
    cands = add_features(
        build_candidates(held_out, queries, index, retrieve_k), listings, queries, index
    )
    cands = with_predictions(cands, scorer, gains)
    cands["score"] = popularity_baseline(cands, bm25_weight, popularity_weight)
    cands["shown"] = True
    train_frame = with_predictions(
        add_features(train[[*PAIR_KEY, "label"]], listings, queries, index), scorer, gains
    )
    ranker = LambdaRanker(train_frame, gains, seed, ranker_params)
    state = SearchState(cands, list(gains), k, ranker.scores)
    return simulate(state, modes)


def integration_report(
    log: pd.DataFrame,
    gains: Mapping[str, float],
    k: int,
    *,
    label_source: str,
    scorer_tier: str,
    unjudged: str,
    n_resamples: int,
    confidence: float,
    seed: int,
    detect: Mapping[str, float],
    ranker_arms: Sequence[str] = (),
) -> dict:
    """Every arm against the baseline, and `ranker_arms` (those that train the ranker with
    predicted relevance) against the ranker without it: the with/without comparison."""
    arms = list(dict.fromkeys(log["arm"]))
    report = analyse_log(
        log, gains, k, BASELINE, [a for a in arms if a != BASELINE], label_source=label_source,
        unjudged=unjudged, n_resamples=n_resamples, confidence=confidence, seed=seed, detect=detect,
    )  # fmt: skip
    report["scorer"] = scorer_tier
    if ranker_arms:
        per_request = request_metrics(log, gains, k, unjudged)
        report["vs_ranker"] = {
            arm: compare_arms(
                per_request, RANKER, arm, n_resamples=n_resamples, confidence=confidence, seed=seed
            )
            for arm in ranker_arms
        }
    return report


def render_markdown(report: dict) -> str:
    """The integration table: each arm's metrics and its paired difference vs the baseline."""
    pct = round(report["confidence"] * 100)
    note = (
        f"Metrics use {report['label_source']} labels; predicted relevance from the "
        f"{report['scorer']} scorer. Unjudged listings: {report['unjudged']} "
        "(see relevance_kit/integrate/results.py). Δ = arm − baseline over queries "
        f"(paired): bootstrap {pct}% CI, p from the paired t-test and Wilcoxon."
    )
    lines = [
        f"# Integration: simulated search on {report['n_queries']} held-out queries (k = {report['k']})",
        "",
        note,
    ]
    header = ["arm", *(f"{METRIC_TITLES[m]}@{report['k']}" for m in METRICS), "unjudged@k"]
    header += [h for m in METRICS for h in (f"Δ {METRIC_TITLES[m]} [CI]", "p (t / W)")]
    rows = []
    for arm, means in report["arms"].items():
        cells = [arm, *(f"{means[m]:.3f}" for m in METRICS), f"{means['unjudged_at_k']:.3f}"]
        vs = report["vs_control"].get(arm)
        for m in METRICS:
            cells += (
                ["reference", ""]
                if vs is None
                else [_delta(vs[m]), f"{vs[m]['p_ttest']:.3g} / {vs[m]['p_wilcoxon']:.3g}"]
            )
        rows.append(cells)
    lines += [
        "",
        pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True),
    ]
    for arm, vs in report.get("vs_ranker", {}).items():
        lines.append("")
        deltas = "; ".join(
            f"Δ {METRIC_TITLES[m]} {_delta(vs[m])}, p {vs[m]['p_ttest']:.3g}" for m in METRICS
        )
        lines.append(f"{arm} vs the ranker without relevance: {deltas}")
    return "\n".join(lines) + "\n"


def _delta(row: dict) -> str:
    return f"{row['diff']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"


def effect_rows(report: dict) -> pd.DataFrame:
    """DVC plot data: one row per (arm, metric) with the mean and the Δ vs baseline and its CI."""
    rows = []
    for arm, means in report["arms"].items():
        for m in METRICS:
            vs = report["vs_control"].get(arm, {}).get(m)
            rows.append({
                "arm": arm, "metric": m, "value": means[m],
                "diff": vs["diff"] if vs else 0.0, "low": vs["low"] if vs else 0.0, "high": vs["high"] if vs else 0.0,
            })  # fmt: skip
    return pd.DataFrame(rows)


def plot_effects(rows: pd.DataFrame, path: str, k: int) -> None:
    """One panel per metric: each arm's Δ vs the baseline with its bootstrap interval."""
    metrics = list(dict.fromkeys(rows["metric"]))
    fig = Figure(figsize=(4.2 * len(metrics), 3.6))
    FigureCanvasAgg(fig)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        part = rows[rows["metric"] == metric]
        y = np.arange(len(part))
        err = np.vstack([part["diff"] - part["low"], part["high"] - part["diff"]])
        ax.errorbar(part["diff"], y, xerr=err, fmt="o", capsize=3)
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_yticks(y, part["arm"])
        ax.invert_yaxis()
        ax.set_title(f"Δ {METRIC_TITLES[metric]}@{k} vs baseline")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

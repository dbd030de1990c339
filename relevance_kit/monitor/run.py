"""One monitoring pass, shared by the DVC stage and the CLI: extend the series with the log's
new days, run the detector over the whole series, and report alerts on the new days."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from relevance_kit.config import MonitoringConfig, RelevanceConfig
from relevance_kit.integrate.candidates import add_features, build_candidates, popularity_baseline
from relevance_kit.integrate.scorers import PairScorer, load_scorer
from relevance_kit.io import atomic_path, read_parquet
from relevance_kit.lexical import CatalogBM25
from relevance_kit.monitor.alerts import alert_records
from relevance_kit.monitor.detect import detect
from relevance_kit.monitor.requests import simulate_request_log
from relevance_kit.monitor.series import update_series


@dataclass(frozen=True)
class MonitorResult:
    series: pd.DataFrame
    detected: pd.DataFrame
    added: list[str]  # ISO days appended in this pass
    alerts: list[dict]  # records of alerted days among `added`


def monitor(
    requests: pd.DataFrame,
    series: pd.DataFrame,
    scorer: PairScorer,
    mc: MonitoringConfig,
    gains: Mapping[str, float],
    seed: int,
) -> MonitorResult:
    series, added_days = update_series(
        series, requests, scorer, gains, k=mc.k, per_day=mc.requests_per_day, seed=seed
    )
    detected = detect(
        series, mc.metric, mc.detector, window_days=mc.window_days, min_history=mc.min_history,
        drop_threshold=mc.drop_threshold, cusum_slack=mc.cusum.slack, cusum_limit=mc.cusum.limit,
    )  # fmt: skip
    added = [d.isoformat() for d in added_days]
    alerts = alert_records(
        detected, added, metric=mc.metric, detector=mc.detector, tier=scorer.tier
    )
    return MonitorResult(series, detected, added, alerts)


def baseline_rankings(
    queries: pd.DataFrame, listings: pd.DataFrame, judged: pd.DataFrame, *, retrieve_k: int, k: int,
    bm25_weight: float, popularity_weight: float,
) -> dict[str, list[str]]:  # fmt: skip
    """The popularity baseline's top-k of every judged query: what live search would show."""
    index = CatalogBM25(listings)
    cands = add_features(
        build_candidates(judged, queries, index, retrieve_k), listings, queries, index
    )
    cands["score"] = popularity_baseline(cands, bm25_weight, popularity_weight)
    ranked = cands.sort_values(["query_id", "score", "listing_id"], ascending=[True, False, True])
    return {qid: group["listing_id"].head(k).tolist() for qid, group in ranked.groupby("query_id")}


def simulated_log(
    cfg: RelevanceConfig, queries: pd.DataFrame, listings: pd.DataFrame, judged: pd.DataFrame
) -> pd.DataFrame:
    """The request log of monitoring.simulation: live traffic served by the popularity baseline."""
    ic, sim = cfg.integration, cfg.monitoring.simulation
    rankings = baseline_rankings(
        queries, listings, judged, retrieve_k=ic.retrieve_k, k=cfg.monitoring.k,
        bm25_weight=ic.baseline.bm25_weight, popularity_weight=ic.baseline.popularity_weight,
    )  # fmt: skip
    return simulate_request_log(
        rankings, dict(zip(queries["query_id"], queries["text"])), listings["listing_id"].tolist(),
        start_date=sim.start_date, days=sim.days, requests_per_day=sim.requests_per_day,
        regression_day=sim.regression_day, regression_share=sim.regression_share, seed=cfg.seed,
    )  # fmt: skip


def simulated_ab_logs(
    cfg: RelevanceConfig, queries: pd.DataFrame, listings: pd.DataFrame, judged: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The impression log of monitoring.abtest.simulation (each request served by a random
    variant) and its control-only pre-period log (None when pre_days is 0)."""
    ic, sim = cfg.integration, cfg.monitoring.abtest.simulation
    rankings = baseline_rankings(
        queries, listings, judged, retrieve_k=ic.retrieve_k, k=cfg.monitoring.k,
        bm25_weight=ic.baseline.bm25_weight, popularity_weight=ic.baseline.popularity_weight,
    )  # fmt: skip
    common = {
        "rankings": rankings, "query_text": dict(zip(queries["query_id"], queries["text"])),
        "catalogue": listings["listing_id"].tolist(), "requests_per_day": sim.requests_per_day,
        "regression_day": None, "regression_share": 0.0,
    }  # fmt: skip
    log = simulate_request_log(
        **common, start_date=sim.start_date, days=sim.days, seed=cfg.seed, variants=sim.variants
    )
    if not sim.pre_days:
        return log, None
    pre = simulate_request_log(
        **common,
        start_date=sim.start_date - timedelta(days=sim.pre_days),
        days=sim.pre_days,
        seed=cfg.seed + 1,
        id_prefix="pre-",
    )
    return log, pre


def monitor_scorer(
    cfg: RelevanceConfig,
    scorer: str,
    requests: pd.DataFrame,
    job: str,
    listings: pd.DataFrame | None = None,
) -> PairScorer:
    """The tier that labels sampled requests: the teacher through the label store (over
    `listings`, by default the prepared catalogue), the student, or a predictions file."""
    query_text = dict(zip(requests["query_id"], requests["query"]))
    if scorer == "teacher":
        from relevance_kit.teacher.pairs import teacher_pairs

        if listings is None:
            listings = read_parquet(Path(cfg.paths.prepared) / "listings.parquet")
        return teacher_pairs(cfg, query_text, listings, job)
    return load_scorer(
        scorer,
        labels=cfg.taxonomy.ids,
        query_text=query_text,
        models_dir=cfg.paths.models,
        student_name=cfg.student.name,
    )


def plot_series(
    detected: pd.DataFrame, metric: str, path: str | Path, regression_day: str | None = None
) -> None:
    """The watched metric per day, its trailing mean and the alerted days."""
    fig = Figure(figsize=(8, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    days = pd.to_datetime(detected["day"])
    ax.plot(days, detected["value"], marker="o", markersize=3, label=metric)
    ax.plot(days, detected["baseline"], linestyle="--", label="trailing mean")
    alerted = detected["alert"].to_numpy()
    ax.scatter(days[alerted], detected["value"][alerted], color="red", zorder=3, label="alert")
    if regression_day:
        ax.axvline(
            pd.Timestamp(regression_day), color="grey", linestyle=":", label="injected regression"
        )
    ax.set_ylabel(metric)
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

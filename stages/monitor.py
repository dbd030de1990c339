"""DVC stage `monitor`: replay the simulated request log (a regression injected from
monitoring.simulation.regression_day on) through daily monitoring: sample and label each day
with the configured tier (the teacher, through the label store, by default), build the series, run the detector; report hits and false alarms.
Alerts here are the expected outcome of the injected regression, so the stage records them
rather than failing; `python -m relevance_kit.monitor run` exits non-zero on an alert."""

from datetime import timedelta
from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_csv, write_json, write_parquet, write_text
from relevance_kit.monitor.alerts import json_lines
from relevance_kit.monitor.log_format import read_request_log
from relevance_kit.monitor.run import monitor, monitor_scorer, plot_series, simulated_log
from relevance_kit.schemas import empty_series
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    mc, sim = cfg.monitoring, cfg.monitoring.simulation
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    log = simulated_log(cfg, queries, listings, read_parquet(prepared / "judgments.parquet"))
    requests = read_request_log(log, "simulated request log")
    scorer = monitor_scorer(cfg, mc.scorer, requests, "monitor", listings)
    result = monitor(requests, empty_series(), scorer, mc, cfg.taxonomy.gains, cfg.seed)

    broken_from = (
        None
        if sim.regression_day is None
        else (sim.start_date + timedelta(days=sim.regression_day)).isoformat()
    )
    alert_days = [r["day"] for r in result.alerts]
    hits = [d for d in alert_days if broken_from and d >= broken_from]
    summary = {
        "tier": scorer.tier, "metric": mc.metric, "detector": mc.detector, "days": len(result.series),
        "regression_from": broken_from, "alert_days": alert_days,
        "false_alarms": len(alert_days) - len(hits), "detected": bool(hits),
        "detection_delay_days": None if not hits else (result.series["day"].tolist().index(hits[0]) - sim.regression_day),
        "mean_before": float(result.series.loc[result.series["day"] < (broken_from or "9999"), mc.metric].mean()),
        "mean_after": float(result.series.loc[result.series["day"] >= (broken_from or "9999"), mc.metric].mean()) if broken_from else None,
    }  # fmt: skip
    out = Path(cfg.paths.predictions) / "monitoring"
    write_parquet(log, out / "request_log.parquet")
    write_parquet(result.series, out / "series.parquet")
    write_text(json_lines(result.alerts), out / "alerts.jsonl")
    write_json(summary, Path(cfg.paths.metrics) / "monitoring.json")
    write_csv(result.detected, Path(cfg.paths.plots) / "monitoring" / "series.csv")
    plot_series(
        result.detected, mc.metric, Path(cfg.paths.plots) / "monitoring" / "series.png", broken_from
    )
    print(result.detected.to_string(index=False))
    print(summary)


if __name__ == "__main__":
    run_stage(main)

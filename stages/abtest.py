"""DVC stage `abtest`: A/B relevance from the simulated two-variant impression log
(monitoring.abtest.simulation: each request served by a random variant; the treatment
replaces a known share of shown slots by random listings) with its control-only pre-period:
each variant's sampled requests labelled by the monitoring scorer (the teacher, through the
label store), compared with the control with bootstrap CIs, p-values, CUPED and sample size."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.monitor.ablog import abtest_report
from relevance_kit.monitor.log_format import read_request_log
from relevance_kit.monitor.run import simulated_ab_logs
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    prepared = Path(cfg.paths.prepared)
    listings = read_parquet(prepared / "listings.parquet")
    log, pre = simulated_ab_logs(
        cfg,
        read_parquet(prepared / "queries.parquet"),
        listings,
        read_parquet(prepared / "judgments.parquet"),
    )
    out = Path(cfg.paths.predictions) / "abtest"
    write_parquet(log, out / "impressions.parquet")
    if pre is not None:
        write_parquet(pre, out / "pre_period.parquet")
    report = abtest_report(
        cfg, read_request_log(log, "simulated impression log"),
        None if pre is None else read_request_log(pre, "simulated pre-period log"), listings,
    )  # fmt: skip
    report["injected"] = {"replaced_share": dict(cfg.monitoring.abtest.simulation.variants)}
    write_json(report, Path(cfg.paths.metrics) / "abtest.json")
    for arm, row in report["vs_control"].items():
        for metric, r in row.items():
            print(
                f"{arm} {metric}: diff {r['diff']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] p={r['p_value']:.3g}"
            )


if __name__ == "__main__":
    run_stage(main)

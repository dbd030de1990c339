"""`python -m relevance_kit.monitor`: daily relevance monitoring from the command line.

    run       extend the series with the request log's new days (idempotent per day), detect;
              on an alert: print the JSON records, append them to --alerts, POST them to
              monitoring.webhook_url when set, and exit 3
    abtest    A/B relevance of an impression log with a `variant` column: per variant
              % fully relevant@k, % irrelevant@k, nDCG@k with bootstrap CIs, each variant vs
              the control (difference, CI, p-value; CUPED with --pre-log), sample size
    simulate  write the simulated request log of params.yaml's monitoring.simulation
              (--ab: the two-variant impression log of monitoring.abtest.simulation)

Request logs: one row per shown slot (date, request_id, query, listing_id, position[,
variant]); see relevance_kit/monitor/log_format.py. Labels come from monitoring.scorer (the
teacher, through the label store at paths.label_store, by default).
Configuration comes from params.yaml (monitoring.*, taxonomy, teacher, inference, paths).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from relevance_kit.config import RelevanceConfig, load_config
from relevance_kit.errors import RelevanceKitError
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.monitor.ablog import abtest_report
from relevance_kit.monitor.alerts import append_alerts, post_webhook
from relevance_kit.monitor.log_format import load_request_log
from relevance_kit.monitor.run import monitor, monitor_scorer, simulated_ab_logs, simulated_log
from relevance_kit.schemas import SERIES_COLUMNS, empty_series, read_frame

ALERT_EXIT = 3


def run_command(
    cfg: RelevanceConfig, log_path: Path, series_path: Path, alerts_path: Path | None
) -> int:
    requests = load_request_log(log_path)
    mc = cfg.monitoring
    scorer = monitor_scorer(cfg, mc.scorer, requests, "monitor")
    series = read_frame(series_path, SERIES_COLUMNS) if series_path.exists() else empty_series()
    result = monitor(requests, series, scorer, mc, cfg.taxonomy.gains, cfg.seed)
    if result.added:
        write_parquet(result.series, series_path)
    print(
        f"series {series_path}: {len(result.series)} days; added {result.added or 'none (all days already in)'}",
        file=sys.stderr,
    )
    if not result.alerts:
        return 0
    for record in result.alerts:
        print(json.dumps(record, sort_keys=True))
    if alerts_path is not None:
        append_alerts(result.alerts, alerts_path)
    if mc.webhook_url:
        error = post_webhook(mc.webhook_url, result.alerts)
        if error:
            print(f"error: {error}", file=sys.stderr)
    return ALERT_EXIT


def abtest_command(
    cfg: RelevanceConfig, log_path: Path, pre_path: Path | None, out: Path | None
) -> dict:
    requests = load_request_log(log_path)
    pre = None if pre_path is None else load_request_log(pre_path)
    report = abtest_report(cfg, requests, pre)
    if out is not None:
        write_json(report, out)
    return report


def simulate_command(cfg: RelevanceConfig, out: Path, ab: bool) -> None:
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    judged = read_parquet(prepared / "judgments.parquet")
    if not ab:
        write_parquet(simulated_log(cfg, queries, listings, judged), out)
        print(f"wrote {out}", file=sys.stderr)
        return
    log, pre = simulated_ab_logs(cfg, queries, listings, judged)
    write_parquet(log, out)
    if pre is not None:
        write_parquet(pre, out.with_name(f"{out.stem}.pre{out.suffix}"))
    print(
        f"wrote {out}"
        + (
            ""
            if pre is None
            else f" and its pre-period {out.with_name(f'{out.stem}.pre{out.suffix}')}"
        ),
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m relevance_kit.monitor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default="params.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="append new days to the series and detect drops")
    p.add_argument("--log", required=True, type=Path, help="request log parquet")
    p.add_argument(
        "--series", required=True, type=Path, help="series parquet (created when absent)"
    )
    p.add_argument("--alerts", type=Path, help="JSON-lines file the alert records are appended to")
    p = sub.add_parser("abtest", help="A/B relevance of an impression log with a variant column")
    p.add_argument(
        "--log", required=True, type=Path, help="impression log parquet (with `variant`)"
    )
    p.add_argument("--pre-log", type=Path, help="request log of the period before the test (CUPED)")
    p.add_argument("--out", type=Path, help="JSON report (printed to stdout as well)")
    p = sub.add_parser("simulate", help="write the simulated request log")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--ab", action="store_true", help="the two-variant impression log (and <out>.pre.parquet)"
    )
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.params)
        if args.command == "run":
            sys.exit(run_command(cfg, args.log, args.series, args.alerts))
        if args.command == "abtest":
            print(
                json.dumps(
                    abtest_command(cfg, args.log, args.pre_log, args.out), indent=2, default=float
                )
            )
            return
        simulate_command(cfg, args.out, args.ab)
    except RelevanceKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

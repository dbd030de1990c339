"""`python -m relevance_kit.monitor`: daily relevance monitoring from the command line.

    run       extend the series with the request log's new days (idempotent per day), detect;
              on an alert: print the JSON records, append them to --alerts, POST them to
              monitoring.webhook_url when set, and exit 3
    simulate  write the simulated request log of params.yaml's monitoring.simulation

Configuration comes from params.yaml (monitoring.*, taxonomy, the scorer's tier).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from relevance_kit.config import RelevanceConfig, load_config
from relevance_kit.errors import RelevanceKitError
from relevance_kit.integrate.scorers import load_scorer
from relevance_kit.io import read_parquet, write_parquet
from relevance_kit.monitor.alerts import append_alerts, post_webhook
from relevance_kit.monitor.requests import load_request_log
from relevance_kit.monitor.run import monitor, simulated_log
from relevance_kit.monitor.series import empty_series

ALERT_EXIT = 3


def run_command(cfg: RelevanceConfig, log_path: Path, series_path: Path, alerts_path: Path | None) -> int:
    requests = load_request_log(log_path)
    mc = cfg.monitoring
    scorer = load_scorer(
        mc.scorer, labels=cfg.taxonomy.ids, query_text=dict(zip(requests["query_id"], requests["query"])),
        models_dir=cfg.paths.models, student_name=cfg.student.name,
    )  # fmt: skip
    series = read_parquet(series_path) if series_path.exists() else empty_series()
    result = monitor(requests, series, scorer, mc, cfg.taxonomy.gains, cfg.seed)
    if result.added:
        write_parquet(result.series, series_path)
    print(f"series {series_path}: {len(result.series)} days; added {result.added or 'none (all days already in)'}", file=sys.stderr)
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


def simulate_command(cfg: RelevanceConfig, out: Path) -> None:
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    write_parquet(simulated_log(cfg, queries, listings, read_parquet(prepared / "judgments.parquet")), out)
    print(f"wrote {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m relevance_kit.monitor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="append new days to the series and detect drops")
    p.add_argument("--log", required=True, type=Path, help="request log parquet")
    p.add_argument("--series", required=True, type=Path, help="series parquet (created when absent)")
    p.add_argument("--alerts", type=Path, help="JSON-lines file the alert records are appended to")
    p = sub.add_parser("simulate", help="write the simulated request log")
    p.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.params)
        if args.command == "run":
            sys.exit(run_command(cfg, args.log, args.series, args.alerts))
        simulate_command(cfg, args.out)
    except RelevanceKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

"""Daily monitoring: idempotent series, detectors (hit, no false alarm), a simulated request
log from the real data with an injected regression, and the CLI's alert path (exit code,
JSON record, webhook to a real HTTP server on localhost)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from relevance_kit.config import load_config
from relevance_kit.errors import DataError
from relevance_kit.integrate.scorers import PredictionsPairs
from relevance_kit.io import write_parquet
from relevance_kit.monitor.detect import detect
from relevance_kit.monitor.log_format import read_request_log
from relevance_kit.monitor.requests import simulate_request_log
from relevance_kit.monitor.run import baseline_rankings, monitor
from relevance_kit.monitor.series import update_series
from relevance_kit.schemas import empty_series
from tests.conftest import REPO, run_stage

GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}
LABELS = list(GAINS)


def _detect(
    values: list[float], method: str = "threshold", metric: str = "pct_relevant"
) -> pd.DataFrame:
    series = pd.DataFrame(
        {"day": [f"2026-01-{i + 1:02d}" for i in range(len(values))], metric: values}
    )
    return detect(
        series,
        metric,
        method,
        window_days=7,
        min_history=5,
        drop_threshold=0.05,
        cusum_slack=0.5,
        cusum_limit=4.0,
    )


@pytest.mark.parametrize("method", ["threshold", "cusum"])
def test_detector_catches_a_lasting_drop_without_false_alarms(method: str) -> None:
    rng = np.random.default_rng(1)
    values = (0.60 + rng.normal(0, 0.015, 25)).tolist()
    values[18:] = (np.asarray(values[18:]) - 0.12).tolist()
    alerts = _detect(values, method)["alert"].to_numpy()
    assert not alerts[:18].any(), "false alarm on a normal day"
    assert alerts[18] or alerts[19], "the drop was not caught within a day"
    assert alerts[18:].mean() > 0.8  # alerted days stay out of the trailing window


def test_detector_watches_rises_of_pct_irrelevant_and_waits_for_history() -> None:
    detected = _detect([0.1, 0.1, 0.1, 0.1, 0.1, 0.11, 0.25], metric="pct_irrelevant")
    assert detected["alert"].tolist() == [False] * 6 + [True]
    assert detected["baseline"].isna().sum() == 5  # min_history days before it speaks
    assert not _detect([0.6, 0.3, 0.3])["alert"].any()


def _requests(days: int, per_day: int, broken_from: int | None = None) -> pd.DataFrame:
    """Requests over two queries whose shown listings get worse from `broken_from` on."""
    rows = []
    for d in range(days):
        for r in range(per_day):
            bad = broken_from is not None and d >= broken_from and r % 2 == 0
            shown = ["bad1", "bad2", "ok"] if bad else ["good1", "good2", "ok"]
            rows += [
                {"date": f"2026-01-{d + 1:02d}", "request_id": f"{d}-{r}", "query": "red shoes", "query_id": "q1", "listing_id": lid, "position": pos}
                for pos, lid in enumerate(shown, start=1)
            ]  # fmt: skip
    return pd.DataFrame(rows)


def _table() -> pd.DataFrame:
    """A hand-made tier: label probabilities of each pair the test logs show."""
    probs = {
        "good1": [0.9, 0.1, 0.0],
        "good2": [0.8, 0.2, 0.0],
        "ok": [0.5, 0.3, 0.2],
        "bad1": [0.0, 0.1, 0.9],
        "bad2": [0.1, 0.1, 0.8],
    }
    frame = pd.DataFrame(
        [
            {
                "query_id": "q1",
                "listing_id": lid,
                **dict(zip(["p_relevant", "p_partially_relevant", "p_irrelevant"], p)),
            }
            for lid, p in probs.items()
        ]
    )
    return frame


class _CountingScorer(PredictionsPairs):
    calls = 0

    def score_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        type(self).calls += 1
        return super().score_pairs(pairs)


def test_series_is_idempotent_per_day() -> None:
    scorer = _CountingScorer(_table(), LABELS, tier="table", where="table")
    first, added = update_series(
        empty_series(), read_request_log(_requests(3, 10)), scorer, GAINS, k=3, per_day=4, seed=0
    )
    assert len(first) == 3 and len(added) == 3 and scorer.calls == 3
    again, added_again = update_series(
        first, read_request_log(_requests(3, 10)), scorer, GAINS, k=3, per_day=4, seed=0
    )
    assert added_again == [] and scorer.calls == 3 and again.equals(first)
    longer, more = update_series(
        first, read_request_log(_requests(5, 10)), scorer, GAINS, k=3, per_day=4, seed=0
    )
    assert [d.isoformat() for d in more] == ["2026-01-04", "2026-01-05"]
    assert longer["day"].is_unique and longer.iloc[:3].equals(first)
    assert set(longer["n_sampled"]) == {4} and set(longer["tier"]) == {"table"}
    assert longer["pct_relevant"].iloc[0] == pytest.approx((0.9 + 0.8 + 0.5) / 3)


def test_request_log_folds_slots_into_requests_best_first() -> None:
    log = _requests(2, 2).sample(frac=1.0, random_state=0)  # slot rows in any order
    requests = read_request_log(log)
    assert len(requests) == 4 and set(requests["day"].astype(str)) == {"2026-01-01", "2026-01-02"}
    assert requests["listing_ids"].map(list).tolist() == [["good1", "good2", "ok"]] * 4


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda log: log.drop(columns="position"), r"missing column\(s\) \['position'\]"),
        (lambda log: log.iloc[:0], "the log has no requests"),
        (
            lambda log: log.assign(query=[None] + list(log["query"].iloc[1:])),
            "row 0: column 'query' = None is null",
        ),
        (
            lambda log: log.assign(listing_id=[7] + list(log["listing_id"].iloc[1:])),
            "row 0: column 'listing_id' = 7 is not a string",
        ),
        (
            lambda log: log.assign(query=["  "] + list(log["query"].iloc[1:])),
            "row 0: column 'query' = '  ' is empty",
        ),
        (
            lambda log: log.assign(position=[0] + list(log["position"].iloc[1:])),
            "row 0: column 'position' = 0 is not a 1-based integer",
        ),
        (
            lambda log: log.assign(position=[1.5] + list(log["position"].iloc[1:])),
            "row 0: column 'position' = 1.5",
        ),
        (
            lambda log: log.assign(date=["not a day"] + list(log["date"].iloc[1:])),
            "row 0: column 'date' = 'not a day' is not a date",
        ),
        (
            lambda log: log.assign(position=[1, 1, 3, 1, 2, 3]),
            "row 1: column 'position' = 1 repeats a position",
        ),
        (
            lambda log: log.assign(listing_id=["ok", "good2", "ok", "good1", "good2", "ok"]),
            "row 2: column 'listing_id' = 'ok' repeats a listing",
        ),
        (
            lambda log: log.assign(
                query=[
                    "red shoes",
                    "blue shoes",
                    "red shoes",
                    "red shoes",
                    "red shoes",
                    "red shoes",
                ]
            ),
            "row 0: column 'query' .* differs between rows of the same request_id",
        ),
        (
            lambda log: log.assign(variant=["a", "b", "a", "a", "a", "a"]),
            "column 'variant' .* differs between rows",
        ),
    ],
)
def test_bad_request_logs_name_the_column_and_row(edit, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_request_log(edit(_requests(1, 2)), "day.parquet")


@pytest.mark.slow
def test_simulated_log_from_the_data_catches_the_injected_regression(project, esci_dir) -> None:
    """Real queries and catalogue, served by the popularity baseline; the tier here is a table
    of the human labels (unjudged listings, such as random ones, labelled irrelevant)."""
    root = project()
    assert run_stage("prepare", root).returncode == 0
    prepared = root / "data" / "prepared"
    queries = pd.read_parquet(prepared / "queries.parquet")
    listings = pd.read_parquet(prepared / "listings.parquet")
    judged = pd.read_parquet(prepared / "judgments.parquet").head(1500)
    rankings = baseline_rankings(
        queries, listings, judged, retrieve_k=20, k=10, bm25_weight=1.0, popularity_weight=1.0
    )
    log = simulate_request_log(
        rankings, dict(zip(queries["query_id"], queries["text"])), listings["listing_id"].tolist(),
        start_date=date(2026, 1, 1), days=24, requests_per_day=120, regression_day=17, regression_share=0.3, seed=3,
    )  # fmt: skip
    requests = read_request_log(log)
    scorer = _HumanTable(judged)
    cfg = load_config(REPO / "params.yaml", REPO / "conf").monitoring
    assert cfg.detector == "cusum"
    result = monitor(
        requests,
        empty_series(),
        scorer,
        cfg.model_copy(update={"requests_per_day": 100}),
        GAINS,
        seed=0,
    )
    alerts = result.detected["alert"].to_numpy()
    assert len(result.series) == 24
    assert not alerts[:17].any(), result.detected
    assert alerts[17] or alerts[18], result.detected
    assert alerts[19:].all(), result.detected


class _HumanTable:
    tier = "human"

    def __init__(self, judged: pd.DataFrame) -> None:
        self.label = judged.set_index(["query_id", "listing_id"])["label"]

    def score_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        labels = self.label.reindex(
            pd.MultiIndex.from_frame(pairs[["query_id", "listing_id"]])
        ).fillna("irrelevant")
        out = pairs[["query_id", "listing_id"]].reset_index(drop=True).copy()
        for label in LABELS:
            out[f"p_{label}"] = (labels.to_numpy() == label).astype(float)
        return out


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_cli_alerts_with_exit_code_json_and_webhook(project, tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        table = tmp_path / "table.parquet"
        write_parquet(_table(), table)
        root = project(
            edits={
                "monitoring.scorer": str(table),
                "monitoring.webhook_url": f"http://127.0.0.1:{server.server_port}/hook",
                "monitoring.requests_per_day": 6,
            }
        )
        cli = [
            sys.executable,
            "-m",
            "relevance_kit.monitor",
            "run",
            "--log",
            "log.parquet",
            "--series",
            "series.parquet",
            "--alerts",
            "alerts.jsonl",
        ]

        write_parquet(_requests(8, 12), root / "log.parquet")
        normal = subprocess.run(
            cli, cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        assert normal.returncode == 0, normal.stderr
        write_parquet(_requests(10, 12, broken_from=8), root / "log.parquet")
        broken = subprocess.run(
            cli, cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        assert broken.returncode == 3, broken.stderr
        records = [json.loads(line) for line in broken.stdout.splitlines()]
        assert [r["day"] for r in records] == ["2026-01-09", "2026-01-10"]
        assert (
            records[0]["metric"] == "pct_relevant"
            and records[0]["value"] < records[0]["trailing_mean"]
        )
        assert _Hook.received == [{"alerts": records}]
        assert (root / "alerts.jsonl").read_text().count("relevance_drop") == 2

        rerun = subprocess.run(
            cli, cwd=root, capture_output=True, text=True, timeout=120, check=False
        )
        assert rerun.returncode == 0 and "already in" in rerun.stderr  # no day twice, no new alert
        assert pd.read_parquet(root / "series.parquet")["day"].is_unique
    finally:
        server.shutdown()

"""A/B relevance from an impression log: a simulated two-variant log with a known injected
effect is recovered (CI covers it, p below alpha, CUPED narrows the interval), an A/A log
gives false positives at about the stated rate over repeated seeds, and the CLI reads the
documented log format end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from relevance_kit.config import AbLogConfig, AbSimulation
from relevance_kit.integrate.abtest import requests_per_variant
from relevance_kit.integrate.scorers import PredictionsPairs
from relevance_kit.io import write_parquet
from relevance_kit.monitor.ablog import analyse_impressions, variant_metrics
from relevance_kit.monitor.log_format import read_request_log
from relevance_kit.monitor.requests import simulate_request_log

GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}
LABELS = list(GAINS)
K = 10
START = date(2026, 2, 1)


def _world(
    n_queries: int = 40, catalogue: int = 800, seed: int = 0
) -> tuple[dict, dict, list[str], pd.DataFrame, np.ndarray]:
    """Queries whose shown top-10 listings are relevant with a query-specific probability
    a_q (hard and easy queries), and a catalogue whose other listings are irrelevant to
    them: a slot replaced by a random listing loses exactly a_q of % fully relevant."""
    rng = np.random.default_rng(seed)
    listings = [f"L{i:04d}" for i in range(catalogue)]
    rankings = {
        f"q{i:02d}": list(rng.choice(listings, size=K, replace=False)) for i in range(n_queries)
    }
    a = rng.uniform(0.15, 0.95, n_queries)
    rows = []
    for (qid, shown), a_q in zip(rankings.items(), a):
        for lid in listings:
            p = [a_q, (1 - a_q) / 2, (1 - a_q) / 2] if lid in shown else [0.0, 0.0, 1.0]
            rows.append(
                {"query_id": qid, "listing_id": lid, **dict(zip([f"p_{x}" for x in LABELS], p))}
            )
    return rankings, {q: f"query {q}" for q in rankings}, listings, pd.DataFrame(rows), a


def _config(
    variants: dict[str, float], per_variant: int, pre: int, resamples: int = 1000
) -> AbLogConfig:
    return AbLogConfig(
        control="control", requests_per_variant=per_variant, pre_requests=pre, bootstrap_resamples=resamples,
        confidence=0.95, alpha=0.05, power=0.8, detect={"pct_relevant": 0.03},
        simulation=AbSimulation(start_date=START, days=5, pre_days=5, requests_per_day=2 * per_variant // 5, variants=variants),
    )  # fmt: skip


def _analyse(world: tuple, ab: AbLogConfig, seed: int, with_pre: bool) -> dict:
    rankings, text, catalogue, table, _ = world
    sim = ab.simulation
    common = {
        "rankings": rankings,
        "query_text": text,
        "catalogue": catalogue,
        "regression_day": None,
        "regression_share": 0.0,
    }
    log = simulate_request_log(
        **common,
        start_date=sim.start_date,
        days=sim.days,
        requests_per_day=sim.requests_per_day,
        seed=seed,
        variants=sim.variants,
    )
    scorer = PredictionsPairs(table, LABELS, tier="table", where="table")
    per_request = variant_metrics(
        read_request_log(log), scorer, GAINS, K, ab.requests_per_variant, seed
    )
    pre = None
    if with_pre:
        pre_log = simulate_request_log(
            **common,
            start_date=sim.start_date - timedelta(days=sim.pre_days),
            days=sim.pre_days,
            requests_per_day=sim.requests_per_day,
            seed=seed + 10_000,
            id_prefix="pre-",
        )
        pre = variant_metrics(
            read_request_log(pre_log).assign(variant="pre"), scorer, GAINS, K, ab.pre_requests, seed
        )
    return analyse_impressions(per_request, pre, ab, k=K, label_source="table", seed=seed)


def test_recovers_the_injected_effect_and_cuped_narrows_it() -> None:
    world = _world()
    share = 0.2
    known = -share * float(world[4].mean())  # E[treatment - control] of % fully relevant
    report = _analyse(
        world,
        _config({"control": 0.0, "treatment": share}, per_variant=600, pre=600),
        seed=1,
        with_pre=True,
    )
    row = report["vs_control"]["treatment"]["pct_relevant"]
    assert row["low"] <= known <= row["high"], (known, row)
    assert row["p_value"] < 0.05 and row["significant"]
    assert row["cuped"]["low"] <= known <= row["cuped"]["high"], (known, row["cuped"])
    assert row["cuped"]["variance_reduction"] > 0.3  # query difficulty is most of the variance
    assert row["cuped"]["high"] - row["cuped"]["low"] < row["high"] - row["low"]
    assert row["cuped"]["requests_per_variant_needed"] < row["requests_per_variant_needed"]
    irrelevant = report["vs_control"]["treatment"]["pct_irrelevant"]
    assert irrelevant["diff"] > 0 and irrelevant["p_value"] < 0.05  # broken slots are irrelevant
    variants = report["variants"]
    assert set(variants) == {"control", "treatment"} and variants["control"]["n_requests"] == 600
    for name in variants:
        ci = variants[name]["pct_relevant"]
        assert ci["low"] < ci["mean"] < ci["high"]
    assert (
        variants["control"]["pct_relevant"]["low"]
        <= float(world[4].mean())
        <= variants["control"]["pct_relevant"]["high"]
    )


@pytest.mark.slow
def test_a_over_a_false_positive_rate_is_about_alpha() -> None:
    world = _world(n_queries=25, catalogue=300)
    ab = _config({"control": 0.0, "treatment": 0.0}, per_variant=50, pre=0, resamples=100)
    seeds = 120
    rejected = [
        _analyse(world, ab, seed, with_pre=False)["vs_control"]["treatment"]["pct_relevant"][
            "significant"
        ]
        for seed in range(seeds)
    ]
    low, high = (
        stats.binom.ppf([0.0005, 0.9995], seeds, ab.alpha) / seeds
    )  # 99.9% range of the count at alpha
    assert low <= np.mean(rejected) <= high, np.mean(rejected)


def test_sample_size_matches_statsmodels_and_the_normal_approximation() -> None:
    n = requests_per_variant(0.02, 0.3, alpha=0.05, power=0.8)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert abs(n - 2 * (z * 0.3 / 0.02) ** 2) / n < 0.01


def test_cli_reads_the_log_format_and_names_a_missing_variant(project, tmp_path: Path) -> None:
    world = _world(n_queries=12, catalogue=200)
    table = tmp_path / "table.parquet"
    write_parquet(world[3], table)
    root = project(
        edits={
            "monitoring.scorer": str(table),
            "monitoring.abtest.requests_per_variant": 60,
            "monitoring.abtest.pre_requests": 60,
            "monitoring.k": K,
        }
    )
    ab = _config({"control": 0.0, "treatment": 0.3}, per_variant=60, pre=60)
    common = {
        "rankings": world[0],
        "query_text": world[1],
        "catalogue": world[2],
        "regression_day": None,
        "regression_share": 0.0,
        "requests_per_day": 30,
    }
    write_parquet(
        simulate_request_log(
            **common, start_date=START, days=5, seed=0, variants=ab.simulation.variants
        ),
        root / "log.parquet",
    )
    write_parquet(
        simulate_request_log(
            **common, start_date=START - timedelta(days=5), days=5, seed=1, id_prefix="pre-"
        ),
        root / "pre.parquet",
    )
    cli = [
        sys.executable,
        "-m",
        "relevance_kit.monitor",
        "abtest",
        "--log",
        "log.parquet",
        "--pre-log",
        "pre.parquet",
        "--out",
        "ab.json",
    ]
    done = subprocess.run(cli, cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "ab.json").read_text())
    assert report["cuped"] and report["label_source"] == "table" and report["n_pre_requests"] == 60
    assert report["vs_control"]["treatment"]["pct_relevant"]["diff"] < 0
    write_parquet(
        pd.read_parquet(root / "log.parquet").drop(columns="variant"), root / "log.parquet"
    )
    missing = subprocess.run(
        cli, cwd=root, capture_output=True, text=True, timeout=300, check=False
    )
    assert missing.returncode == 2 and "needs the `variant` column" in missing.stderr
    assert not (root / "ab.json").exists() or json.loads((root / "ab.json").read_text()) == report

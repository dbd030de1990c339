"""The cascade page: built from real tier-table, A/B and monitoring outputs on small inputs,
then rendered by headless Chromium and checked to be non-blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from relevance_kit.config import AbLogConfig, AbSimulation
from relevance_kit.evaluation.learning_curve import plot_curve
from relevance_kit.evaluation.plots import plot_confusion
from relevance_kit.evaluation.tier_table import tier_table
from relevance_kit.evaluation.transfer import summarise
from relevance_kit.golden.noise_ceiling import DirichletMixture, Panel, noise_ceiling
from relevance_kit.integrate.abtest import analyse_log
from relevance_kit.integrate.experiment import effect_rows, plot_effects
from relevance_kit.monitor.ablog import analyse_impressions
from relevance_kit.monitor.detect import detect
from relevance_kit.monitor.run import plot_series
from relevance_kit.report_html import render_page
from relevance_kit.sweep import Sweep, sweep_spread

GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}
LABELS = list(GAINS)
CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)


def _parts(tmp_path: Path) -> dict:
    rng = np.random.default_rng(0)
    golden = pd.DataFrame(
        {
            "query_id": np.repeat([f"q{i}" for i in range(12)], 5),
            "listing_id": [f"l{i}" for i in range(60)],
        }
    )
    golden["label"] = rng.choice(LABELS, size=60)
    noisy = golden.assign(
        label=np.where(rng.random(60) < 0.7, golden["label"], rng.choice(LABELS, size=60)),
        score=np.nan,
    )
    tiers = tier_table(
        golden,
        {"student": noisy, "majority": noisy.assign(label="relevant")},
        LABELS,
        200,
        0,
        "majority",
        gains={"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0},
    )
    plot_confusion(
        tiers["tiers"]["student"]["confusion_matrix"],
        LABELS,
        tmp_path / "student.png",
        "student vs golden",
    )

    log = golden.rename(columns={"query_id": "request_id"}).assign(
        query_id=lambda f: f["request_id"]
    )
    ranked = lambda arm, order: log.assign(arm=arm, rank=order)
    arms = pd.concat(
        [
            ranked("baseline", np.tile(np.arange(1, 6), 12)),
            ranked("boost", np.tile(np.arange(5, 0, -1), 12)),
        ]
    )
    integration = analyse_log(
        arms, GAINS, 3, "baseline", ["boost"], label_source="human", n_resamples=200
    )
    integration["scorer"] = "student"
    plot_effects(effect_rows(integration), str(tmp_path / "effects.png"), 3)

    values = 0.6 + rng.normal(0, 0.01, 20)
    values[15:] -= 0.1
    series = pd.DataFrame(
        {
            "day": pd.date_range("2026-01-01", periods=20).strftime("%Y-%m-%d"),
            "pct_relevant": values,
        }
    )
    detected = detect(
        series,
        "pct_relevant",
        "cusum",
        window_days=7,
        min_history=5,
        drop_threshold=0.05,
        cusum_slack=0.5,
        cusum_limit=4,
    )
    plot_series(detected, "pct_relevant", tmp_path / "series.png", "2026-01-16")
    monitoring = {
        "metric": "pct_relevant", "detector": "cusum", "tier": "teacher", "days": 20, "regression_from": "2026-01-16",
        "alert_days": detected.loc[detected["alert"], "day"].tolist(), "detected": True, "false_alarms": 0,
        "mean_before": 0.6, "mean_after": 0.5,
    }  # fmt: skip
    golden = pd.DataFrame({"query_id": [f"q{i // 4}" for i in range(40)], "listing_id": [f"l{i}" for i in range(40)],
                           "label": rng.choice(["relevant", "partially_relevant", "irrelevant"], size=40)})  # fmt: skip
    gain = golden["label"].map(GAINS).to_numpy()
    transfer = summarise(
        golden, {"bm25": gain + rng.normal(0, 1, 40), "student": gain + rng.normal(0, 0.3, 40)}, GAINS, 10, 200, 0, 0.95,
        source="esci_us", target="homedepot",
    )  # fmt: skip
    curve = pd.DataFrame(
        {"annotated_queries": [15, 30, 60], "teacher": [0.31, 0.36, 0.40], "bm25": [0.41] * 3}
    )
    plot_curve(curve, tmp_path / "curve.png")
    return {
        "abtest": _abtest(rng), "transfer": transfer, "noise_ceiling": _noise_ceiling(rng),
        "learning_curve": curve.to_dict("records"), "learning_curve_png": (tmp_path / "curve.png").read_bytes(),
        "experiment": "ci_tiny", "tiers": tiers, "training_noise": _training_noise(tiers), "confusion": {"student": (tmp_path / "student.png").read_bytes()},
        "integration": integration, "effects_png": (tmp_path / "effects.png").read_bytes(),
        "monitoring": monitoring, "series_png": (tmp_path / "series.png").read_bytes(),
    }  # fmt: skip


def _training_noise(tiers: dict) -> dict:
    """A real sweep spread (`sweep_spread` over `dvc exp show --json` rows): the tier table
    under three training seeds, the student's macro-F1 moving."""

    def run(seed: int, student_f1: float) -> dict:
        student = {**tiers["tiers"]["student"], "macro_f1": {"estimate": student_f1}}
        params = {"experiment": "ci_tiny", "training_seed": seed}
        table = {"tiers": {**tiers["tiers"], "student": student}}
        return {"data": {"params": {"params.yaml": {"data": params}}, "metrics": {"metrics/tiers.json": {"data": table}}}}  # fmt: skip

    workspace, *others = [run(42, 0.31), run(1, 0.35), run(2, 0.27)]
    shown = [{**workspace, "rev": "2386d6f4", "experiments": [{"revs": [r]} for r in others]}]
    return sweep_spread(shown, Sweep(name="training_seeds", grid={"training_seed": [42, 1, 2]}))


def _noise_ceiling(rng: np.random.Generator) -> dict:
    """A real noise ceiling: Dirichlet mixtures fitted to 2,000 panels of 3 raters grading 1-3."""
    panel = Panel(low=1, high=3, size=3)
    truth = DirichletMixture(np.array([1.0]), np.array([[0.5, 1.0, 2.0]]))
    sums = rng.multinomial(3, truth.draw(2_000, rng)) @ np.arange(3)
    sum_labels = np.array([2, 2, 2, 1, 1, 0, 0])  # Home Depot's bins, as taxonomy indices
    return noise_ceiling(
        sums, panel, sum_labels, LABELS, mixtures=[1, 2], restarts=1, simulated_pairs=5_000,
        min_fit_p_value=0.05, seed=0,
    )  # fmt: skip


def _abtest(rng: np.random.Generator) -> dict:
    """A real A/B report: labelled requests of two variants (the treatment worse by 0.1) and a pre-period."""
    queries = [f"q{i}" for i in range(20)]
    base = dict(zip(queries, rng.uniform(0.3, 0.9, 20)))

    def requests(arm: str, n: int, shift: float) -> pd.DataFrame:
        qids = rng.choice(queries, size=n)
        value = np.clip([base[q] + shift + rng.normal(0, 0.05) for q in qids], 0, 1)
        return pd.DataFrame(
            {
                "request_id": [f"{arm}{i}" for i in range(n)],
                "query_id": qids,
                "arm": arm,
                "pct_relevant": value,
                "pct_irrelevant": 1 - value,
                "ndcg": value,
            }
        )

    per_request = pd.concat([requests("control", 150, 0.0), requests("treatment", 150, -0.1)])
    ab = AbLogConfig(
        control="control", requests_per_variant=150, pre_requests=150, bootstrap_resamples=200, confidence=0.95, alpha=0.05, power=0.8,
        detect={"pct_relevant": 0.02}, simulation=AbSimulation(start_date="2026-02-01", days=7, pre_days=7, requests_per_day=50, variants={"control": 0.0, "treatment": 0.1}),
    )  # fmt: skip
    report = analyse_impressions(
        per_request, requests("pre", 150, 0.0), ab, k=10, label_source="teacher", seed=0
    )
    return {**report, "injected": {"replaced_share": {"control": 0.0, "treatment": 0.1}}}


def test_page_holds_every_part_and_names_missing_ones(tmp_path: Path) -> None:
    parts = _parts(tmp_path)
    page = render_page(**parts)
    for text in (
        "macro-F1",
        "student",
        "% fully relevant@3",
        "boost",
        "cusum",
        "2026-01-16",
        "data:image/png;base64,",
    ):
        assert text in page
    assert page.count("<img") == 4
    assert "Learning curve" in page and "<td>30</td><td>0.360</td><td>0.410</td>" in page
    assert (
        "A/B test from the impression log" in page
        and "<td>treatment</td>" in page
        and "labelled by" in page
    )
    diff = parts["abtest"]["vs_control"]["treatment"]["pct_relevant"]
    assert (
        f"{diff['diff']:+.3f}" in page and f"[{diff['low']:+.3f}, {diff['high']:+.3f}]" in page
    )  # Δ with its CI
    assert f"{diff['cuped']['variance_reduction']:.0%}" in page
    student = parts["training_noise"]["tiers"]["student"]["macro_f1"]
    assert "Training noise" in page and "0.310, 0.350, 0.270" in page and "commit 2386d6f" in page
    assert f"{student['mean']:.3f} ± {student['sd']:.3f}" in page  # 0.310 ± 0.040
    student_auc = parts["transfer"]["tiers"]["student"]["auc_vs_rest"]["relevant"]
    assert "Transfer to another dataset" in page and "on the homedepot golden set" in page
    assert f"{student_auc['estimate']:.3f} <span class='note'>[{student_auc['low']:.3f}" in page
    ceiling = parts["noise_ceiling"]["second_panel_macro_f1"]
    assert (
        "Label noise: the ceiling of any tier" in page
        and "a <b>second panel</b> of 3 raters" in page
    )
    assert f"<b>{ceiling['min']:.3f}–{ceiling['max']:.3f}</b>" in page
    assert page.index("Label noise") < page.index("Training noise")  # beside the tier table
    categorical = {"available": False, "reason": "the esci_us data has categorical labels"}
    assert "Not available: the esci_us data has categorical labels." in render_page(
        **{**parts, "noise_ceiling": categorical}
    )
    unset = render_page(**{**parts, "transfer": {"source": "esci_us", "target": None, "tiers": {}}})
    assert "No transfer target configured" in unset
    other = render_page(
        **{**parts, "training_noise": {**parts["training_noise"], "experiment": "cpu_demo"}}
    )
    assert "Measured for experiment cpu_demo, not this one" in other
    empty = render_page(
        **{
            **parts,
            "integration": None,
            "effects_png": None,
            "monitoring": None,
            "series_png": None,
            "abtest": None,
            "training_noise": None,
            "transfer": None,
            "learning_curve": None,
            "learning_curve_png": None,
            "noise_ceiling": None,
        }
    )
    assert (
        "dvc repro golden" in empty
        and "dvc repro transfer" in empty
        and "dvc repro integrate" in empty
        and "dvc repro monitor" in empty
        and "dvc repro abtest" in empty
        and "Not measured yet: run <code>relevance-kit sweep conf/sweep/training_seeds.yaml"
        in empty
        and "run <code>relevance-kit sweep conf/sweep/learning_curve.yaml" in empty
    )


def test_page_renders_non_blank_in_headless_chromium(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium): the page cannot be rendered"
        )
    page = tmp_path / "index.html"
    page.write_text(render_page(**_parts(tmp_path)))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,3200",
            page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3200, 1280)
    dark = (pixels < 200).mean()
    assert 0.01 < dark < 0.6, f"screenshot looks blank or broken: {dark:.3%} dark pixels"
    # content in the top, middle and lower thirds: the tables and all three figures drew
    thirds = np.array_split(pixels, 3)
    assert all((part < 200).mean() > 0.005 for part in thirds)
    # the browser's own DOM holds the teacher-monitored series and the per-variant A/B table
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "<td>teacher</td>" in dom and "<td>treatment</td>" in dom and "CUPED" in dom

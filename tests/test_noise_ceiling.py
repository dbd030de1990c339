"""The label-noise ceiling on small simulated panels: the Dirichlet-multinomial fit recovers a
known mixture, simulations are seeded, a panel that never disagrees has no noise, and data
without a numeric panel or with impossible panel means is answered clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.errors import DataError
from relevance_kit.golden.noise_ceiling import (
    DirichletMixture,
    Panel,
    fit_mixture,
    measure,
    panel_sums,
    simulate,
    sum_to_label,
)
from tests.conftest import REPO

CONF = REPO / "conf"
PANEL = Panel(low=1, high=3, size=3)
LABELS = ["relevant", "partially_relevant", "irrelevant"]
KNOWN = DirichletMixture(np.array([1.0]), np.array([[0.5, 1.0, 2.0]]))


def config(*overrides: str) -> RelevanceConfig:
    """Home Depot's config (panels of 3 grading 1-3), with small fits for speed."""
    small = ["golden.noise_ceiling.restarts=1", "golden.noise_ceiling.simulated_pairs=20000"]
    raw = yaml.safe_load(compose(["experiment=homedepot", *small, *overrides], CONF))
    return validate(raw, CONF)


def panel_means(mixture: DirichletMixture, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(PANEL.size, mixture.draw(n, rng))
    return counts @ np.array([1.0, 2.0, 3.0]) / PANEL.size


def judgments(means: np.ndarray) -> pd.DataFrame:
    n = len(means)
    return pd.DataFrame(
        {"query_id": [f"q{i // 5}" for i in range(n)], "listing_id": [f"l{i}" for i in range(n)], "grade": means}
    )  # fmt: skip


def test_panel_means_fall_into_the_bins_as_prepare_bins_them() -> None:
    cfg = config()
    source_map = cfg.taxonomy.source_maps["homedepot"]
    labels = sum_to_label(PANEL, cfg.data.rating_bins, source_map, LABELS)
    # means 1, 1.33, 1.67 -> irrelevant; 2, 2.33 -> partially relevant; 2.67, 3 -> relevant
    assert [LABELS[i] for i in labels] == ["irrelevant"] * 3 + ["partially_relevant"] * 2 + ["relevant"] * 2  # fmt: skip
    assert KNOWN.sum_probabilities(PANEL).sum() == pytest.approx(1.0)


def test_fit_recovers_a_known_dirichlet() -> None:
    sums, on_lattice = panel_sums(panel_means(KNOWN, 60_000, seed=1), PANEL)
    assert on_lattice.all()
    fits = fit_mixture(sums, PANEL, components=1, restarts=2, seed=0)
    best = max(fits, key=lambda f: f.log_likelihood)
    np.testing.assert_allclose(best.mixture.alphas[0], KNOWN.alphas[0], rtol=0.15)
    assert best.chi_square_p > 0.01 and best.total_variation < 0.01
    # both restarts find the same optimum of this identifiable model
    assert fits[0].log_likelihood == pytest.approx(fits[1].log_likelihood, abs=0.1)


def test_simulation_is_seeded() -> None:
    labels = np.array([2, 2, 2, 1, 1, 0, 0])  # label index of panel sums 0..6 (Home Depot bins)
    first = simulate(KNOWN, PANEL, labels, LABELS, 5_000, seed=3)
    assert simulate(KNOWN, PANEL, labels, LABELS, 5_000, seed=3) == first
    assert simulate(KNOWN, PANEL, labels, LABELS, 5_000, seed=4) != first
    assert 0.0 < first["second_panel_macro_f1"] < first["oracle_macro_f1"] < 1.0
    assert set(first["oracle_f1"]) == set(LABELS)


def test_a_panel_that_never_disagrees_leaves_no_noise() -> None:
    rng = np.random.default_rng(0)
    means = rng.choice([1.0, 2.0, 3.0], p=[0.2, 0.3, 0.5], size=3_000)
    report = measure(config("golden.noise_ceiling.mixtures=[1]"), judgments(means))
    assert report["available"] and report["accepted"] == 1 and report["left_out_pairs"] == 0
    assert report["second_panel_macro_f1"]["min"] > 0.97
    assert report["oracle_macro_f1"]["min"] > 0.97
    assert report["panel_means"] == {
        "1.00": int((means == 1).sum()), "1.33": 0, "1.67": 0, "2.00": int((means == 2).sum()),
        "2.33": 0, "2.67": 0, "3.00": int((means == 3).sum()),
    }  # fmt: skip


def test_noisy_panels_are_measured_and_other_panel_sizes_left_out() -> None:
    means = np.concatenate([panel_means(KNOWN, 4_000, seed=2).round(2), [1.25, 2.5, 2.75]])
    report = measure(config("golden.noise_ceiling.mixtures=[1,2]"), judgments(means))
    assert report["pairs"] == 4_000 and report["left_out_pairs"] == 3
    assert [(f["components"], f["restart"]) for f in report["fits"]] == [(1, 0), (2, 0)]
    assert report["fits"][0]["accepted"]  # the true model reproduces its own panels
    second, oracle = report["second_panel_macro_f1"], report["oracle_macro_f1"]
    assert 0.3 < second["min"] <= second["max"] < oracle["min"] <= oracle["max"] < 0.95


def test_categorical_data_or_no_setting_is_unavailable_not_an_error() -> None:
    esci = validate(yaml.safe_load(compose(["experiment=ci_tiny"], CONF)), CONF)
    report = measure(esci, judgments(np.full(3, np.nan)))
    assert report["available"] is False and "data.rating_bins is null" in report["reason"]
    off = measure(config("golden.noise_ceiling=null"), judgments(np.ones(3)))
    assert off == {"available": False, "reason": "golden.noise_ceiling is null (not measured)"}


def test_impossible_panel_means_name_the_row() -> None:
    with pytest.raises(DataError, match=r"panel mean 3\.5 of pair \(q0, l2\) .* outside the grade range \[1, 3\]"):  # fmt: skip
        measure(config(), judgments(np.array([1.0, 2.0, 3.5, 2.0])))
    with pytest.raises(DataError, match=r"panel mean nan of pair \(q0, l0\) is missing"):
        measure(config(), judgments(np.array([np.nan, 2.0])))
    with pytest.raises(DataError, match=r"only 1 of 3 panel means are means of 3 whole grades"):
        measure(config(), judgments(np.array([1.5, 2.0, 2.5])))

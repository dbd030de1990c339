"""The Home Depot dataset by config alone: its prepare counts on the real file, split sizes
that suit 11,795 queries (counts and fractions), and the raters' recorded disagreement in
the golden report."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from relevance_kit.config import compose, validate
from relevance_kit.data.prepare import prepare_dataset
from relevance_kit.evaluation.transfer import target_golden
from relevance_kit.golden.build import build_golden
from relevance_kit.sampling.splits import resolve_sizes
from tests.conftest import REPO

CONF = REPO / "conf"
HOMEDEPOT_DIR = (REPO / ".." / "shared" / "datasets" / "homedepot").resolve()
LABELS = ["relevant", "partially_relevant", "irrelevant"]


@pytest.fixture(scope="module")
def raw() -> dict:
    raw = yaml.safe_load(compose(["experiment=homedepot"], CONF))
    raw["data"]["mirror_dirs"] = [str(HOMEDEPOT_DIR)]
    return raw


def test_real_homedepot_data_matches_its_readme(raw) -> None:
    if not (HOMEDEPOT_DIR / "train.csv.zip").exists():
        pytest.skip(f"the Home Depot data is not at {HOMEDEPOT_DIR}")
    prepared = prepare_dataset(validate(raw, CONF))
    report = prepared.report
    assert (report["pairs"], report["queries"], report["listings"]) == (74_067, 11_795, 54_667)
    assert report["raters_disagreed_share"] == pytest.approx(0.555, abs=0.0005)  # README: 55.5 %
    # The bins of conf/data/homedepot.yaml on the README's value counts.
    assert report["labels"] == {
        "relevant": 34_357,
        "partially_relevant": 27_810,
        "irrelevant": 11_900,
    }
    assert (
        report["quarantined"] == 0 and report["listings_with_conflicting_fields"] == 15
    )  # README: 15 products
    assert prepared.judgments["grade"].between(1, 3).all()
    assert set(prepared.judgments["guideline_version"]) == {"2016.1"}


def test_homedepot_split_sizes_mix_counts_and_fractions(raw) -> None:
    cfg = validate(raw, CONF)
    sizes = resolve_sizes(cfg.sampling.splits, 11_795)
    assert sizes == {"golden": 400, "annotate": 4000, "teacher": 1769, "unlabeled": 5626}
    assert cfg.experiment == "homedepot" and cfg.guidelines.name == "homedepot"


def test_sampling_sizes_as_fractions_only_validate_and_resolve(raw) -> None:
    raw = {
        **raw,
        "sampling": {
            **raw["sampling"],
            "splits": {"golden": 0.05, "annotate": 0.4, "teacher": 0.15, "unlabeled": "rest"},
        },
    }
    sizes = resolve_sizes(validate(raw, CONF).sampling.splits, 11_795)
    assert sizes == {"golden": 590, "annotate": 4718, "teacher": 1769, "unlabeled": 4718}


def test_golden_report_states_the_raters_disagreement() -> None:
    """One judgment per pair holding the mean grade: agreement measures are undefined, but the
    report states the share of golden pairs whose raters disagreed (non-integer mean)."""
    pairs = pd.DataFrame({"query_id": ["q1", "q1", "q2"], "listing_id": ["a", "b", "a"]})
    judgments = pairs.assign(
        annotator_id="raters_mean", label=["relevant", "partially_relevant", "irrelevant"], source="human",
        grade=[3.0, 2.33, 1.67], raters_disagreed=[False, True, True],
    )  # fmt: skip
    extra = pd.DataFrame({"query_id": ["q9"], "listing_id": ["z"], "annotator_id": ["raters_mean"], "label": ["relevant"],
                          "source": ["human"], "grade": [2.5], "raters_disagreed": [True]})  # fmt: skip
    report = build_golden(
        pairs, pd.concat([judgments, extra]), {}, LABELS, "most_severe", pairs
    ).report["agreement"]
    assert report["raters_disagreed_share"] == pytest.approx(2 / 3)  # golden pairs only (not q9)
    assert (report["raters_disagreed_pairs"], report["raters_disagreed_of"]) == (2, 3)
    assert report["cohen_kappa"] is None and report["pairs_with_2plus"] == 0


def test_transfer_target_is_the_homedepot_experiments_golden_set() -> None:
    """cpu_demo's transfer target (transfer=homedepot) is rebuilt from the raw file as
    experiment=homedepot's own prepare, sample and golden stages build its golden set: the
    counts below are that experiment's metrics/agreement.json (400 queries, 2,504 pairs)."""
    if not (HOMEDEPOT_DIR / "train.csv.zip").exists():
        pytest.skip(f"the Home Depot data is not at {HOMEDEPOT_DIR}")
    raw = yaml.safe_load(compose(["experiment=cpu_demo"], CONF))
    raw["transfer"]["data"]["mirror_dirs"] = [str(HOMEDEPOT_DIR)]
    target = validate(raw, CONF).transfer_target()
    assert (target.data.name, target.sampling.name, target.transfer.enabled) == (
        "homedepot", "homedepot", False,
    )  # fmt: skip
    golden = target_golden(target).golden
    assert (len(golden), golden["query_id"].nunique()) == (2504, 400)
    assert golden["label"].value_counts().to_dict() == {
        "relevant": 1167, "partially_relevant": 933, "irrelevant": 404,
    }  # fmt: skip

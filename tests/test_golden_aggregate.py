"""Golden label aggregation: unanimous, majority, adjudicator, each tie-break rule, bad rows."""

from pathlib import Path

import pandas as pd
import pytest

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.golden import aggregate_golden

FIXTURE = Path(__file__).parent / "fixtures" / "golden" / "judgments_multi.csv"
LABELS = ["relevant", "partially_relevant", "irrelevant"]  # best first


@pytest.fixture
def judgments() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, dtype=str)


def golden_by_listing(judgments: pd.DataFrame, tie_break: str) -> pd.DataFrame:
    return aggregate_golden(judgments, LABELS, tie_break).set_index("listing_id")


def test_settled_pairs_do_not_depend_on_the_tie_break(judgments):
    for tie_break in ("most_severe", "least_severe", "review"):
        golden = golden_by_listing(judgments, tie_break)
        assert golden.loc["L1", ["label", "resolution", "unanimous", "n_annotators"]].tolist() == [
            "relevant",
            "unanimous",
            True,
            3,
        ]
        assert golden.loc["L2", ["label", "resolution", "votes"]].tolist() == [
            "partially_relevant",
            "majority",
            "relevant:1|partially_relevant:2",
        ]
        # a 1-1 tie with an adjudicator: the adjudicator decides, whatever the rule
        assert golden.loc["L3", ["label", "resolution"]].tolist() == [
            "partially_relevant",
            "adjudicator",
        ]
        assert golden.loc["L7", ["label", "resolution", "unanimous"]].tolist() == [
            "irrelevant",
            "single",
            True,
        ]


@pytest.mark.parametrize(
    ("tie_break", "l4", "l5", "resolution"),
    [
        # L4: relevant 1, irrelevant 1. L5: one vote each for all three labels.
        ("most_severe", "irrelevant", "irrelevant", "most_severe"),
        ("least_severe", "relevant", "relevant", "least_severe"),
        ("review", None, None, "unresolved"),
    ],
)
def test_ties_follow_the_rule(judgments, tie_break, l4, l5, resolution):
    golden = golden_by_listing(judgments, tie_break)
    assert golden.loc["L4", "label"] == l4
    assert golden.loc["L5", "label"] == l5
    assert set(golden.loc[["L4", "L5"], "resolution"]) == {resolution}
    assert not golden.loc["L4", "unanimous"]
    assert golden.loc["L5", "votes"] == "relevant:1|partially_relevant:1|irrelevant:1"


def test_a_plurality_without_majority_goes_to_the_rule_among_the_most_voted(judgments):
    # L6: partially_relevant 2 of 4 is no strict majority; the rule picks among the labels
    # with the most votes, and only partially_relevant has 2.
    assert golden_by_listing(judgments, "most_severe").loc["L6", "label"] == "partially_relevant"
    assert golden_by_listing(judgments, "review").loc["L6", "label"] is None


def test_one_row_per_pair_in_key_order(judgments):
    golden = aggregate_golden(judgments, LABELS, "review")
    assert list(golden.columns) == [
        "query_id",
        "listing_id",
        "label",
        "n_annotators",
        "unanimous",
        "resolution",
        "votes",
    ]
    assert golden["listing_id"].tolist() == [f"L{i}" for i in range(1, 8)]


def test_unknown_label_names_file_row_and_allowed_labels(judgments):
    judgments.loc[4, "label"] = "Relevantt"
    with pytest.raises(DataError) as error:
        aggregate_golden(judgments, LABELS, "review", where="golden.csv")
    message = str(error.value)
    assert "golden.csv" in message and "Relevantt" in message and "[4]" in message
    assert str(LABELS) in message


def test_unknown_adjudicator_label_is_an_error(judgments):
    judgments.loc[6, "adjudicator_label"] = "maybe"
    with pytest.raises(DataError, match=r"adjudicator_label \['maybe'\] at row\(s\) \[6\]"):
        aggregate_golden(judgments, LABELS, "review")


def test_conflicting_adjudicator_labels_are_an_error(judgments):
    judgments.loc[7, "adjudicator_label"] = "irrelevant"  # row 6 says partially_relevant
    with pytest.raises(DataError, match="conflicting adjudicator_label"):
        aggregate_golden(judgments, LABELS, "review")


def test_duplicate_judgment_names_the_rows(judgments):
    judgments = pd.concat([judgments, judgments.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataError) as error:
        aggregate_golden(judgments, LABELS, "review")
    assert "[3, 18]" in str(error.value) and "'annotator_id': 'a1'" in str(error.value)


def test_unknown_tie_break_is_a_config_error(judgments):
    with pytest.raises(ConfigError, match="tie_break"):
        aggregate_golden(judgments, LABELS, "coin_flip")

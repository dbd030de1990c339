"""The one majority vote behind the annotator's samples and the golden set's judgments:
the same tie rules, the golden set's stricter bar for an outright win, one votes text."""

import pytest

from relevance_kit.errors import ConfigError
from relevance_kit.voting import vote, votes_text

LABELS = ["relevant", "partially_relevant", "irrelevant"]  # best first


@pytest.mark.parametrize("strict", [False, True], ids=["annotator", "golden"])
@pytest.mark.parametrize(
    ("rule", "expected"),
    [("most_severe", "irrelevant"), ("least_severe", "relevant"), ("review", None)],
)
def test_both_callers_break_a_tie_by_the_same_rule(
    strict: bool, rule: str, expected: str | None
) -> None:
    result = vote({"relevant": 1, "irrelevant": 1}, LABELS, rule, strict_majority=strict)
    assert result.tied == ("relevant", "irrelevant") and not result.settled
    assert result.label == expected


def test_three_way_tie_takes_the_extremes() -> None:
    counts = dict.fromkeys(LABELS, 1)
    assert vote(counts, LABELS, "most_severe").label == "irrelevant"
    assert vote(counts, LABELS, "least_severe").label == "relevant"


@pytest.mark.parametrize("rule", ["most_severe", "least_severe", "review"])
def test_a_plurality_wins_for_the_annotator_but_not_outright_for_golden(rule: str) -> None:
    counts = {"relevant": 1, "partially_relevant": 2, "irrelevant": 1}  # 2 of 4: no majority
    annotator = vote(counts, LABELS, rule)
    assert annotator.settled and annotator.label == "partially_relevant"
    golden = vote(counts, LABELS, rule, strict_majority=True)
    assert not golden.settled and golden.label == (
        None if rule == "review" else "partially_relevant"
    )


def test_a_strict_majority_settles_for_both() -> None:
    for strict in (False, True):
        result = vote(
            {"relevant": 1, "partially_relevant": 2}, LABELS, "review", strict_majority=strict
        )
        assert (
            result.settled
            and result.label == "partially_relevant"
            and (result.top, result.n) == (2, 3)
        )


def test_no_votes_no_label() -> None:
    for strict in (False, True):
        result = vote({}, LABELS, "most_severe", strict_majority=strict)
        assert result.label is None and result.tied == () and result.top == 0


def test_unknown_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tie_break"):
        vote({"relevant": 1}, LABELS, "coin_flip")


def test_votes_text_lists_labels_with_votes_in_taxonomy_order() -> None:
    assert (
        votes_text({"irrelevant": 1, "relevant": 2, "partially_relevant": 0}, LABELS)
        == "relevant:2|irrelevant:1"
    )

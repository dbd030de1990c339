"""One majority vote for every place that turns several labels into one: the annotator's N
samples of a pair and the golden set's human judgments. Both break ties by the same rules
and write the votes in the same text, so a review sheet reads the same whichever made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relevance_kit.errors import ConfigError

# How a tie is settled. Labels are best first, so "most_severe" (the conservative default: a
# pair half the voters found irrelevant should not count as relevant) takes the last tied
# label, "least_severe" the first; "review" gives no label and leaves the pair to humans.
TIE_BREAKS = ("most_severe", "least_severe", "review")
VOTES_SEPARATOR = "|"  # in votes text ("relevant:2|irrelevant:1"); no comma, so CSV-safe


@dataclass(frozen=True)
class Vote:
    """The outcome of one pair's vote."""

    label: str | None  # None: no votes, or a tie the "review" rule leaves to humans
    top: int  # votes of the most-voted label(s)
    n: int  # votes cast
    tied: tuple[str, ...]  # the most-voted labels, in taxonomy order
    settled: bool  # won outright, without the tie rule


def check_tie_break(tie_break: str) -> None:
    """Fail on a rule that is not one of `TIE_BREAKS` before any vote is taken."""
    if tie_break not in TIE_BREAKS:
        raise ConfigError(f"tie_break: {tie_break!r} is not one of {list(TIE_BREAKS)}")


def vote(
    counts: Mapping[str, int],
    labels: Sequence[str],
    tie_break: str,
    *,
    strict_majority: bool = False,
) -> Vote:
    """The label with the most votes. It wins outright when it is the only most-voted label
    or, with `strict_majority` (golden: a plurality of humans is not enough), when it holds
    more than half the votes; otherwise `tie_break` picks among the most-voted labels."""
    check_tie_break(tie_break)
    per_label = [int(counts.get(label, 0)) for label in labels]
    top, n = max(per_label, default=0), sum(per_label)
    tied = tuple(label for label, count in zip(labels, per_label) if top and count == top)
    settled = 2 * top > n if strict_majority else len(tied) == 1
    if settled:
        label = tied[0]
    elif not tied or tie_break == "review":
        label = None
    else:
        label = tied[-1] if tie_break == "most_severe" else tied[0]
    return Vote(label, top, n, tied, settled)


def votes_text(counts: Mapping[str, int], labels: Sequence[str]) -> str:
    """'relevant:2|irrelevant:1': the labels with votes, in taxonomy order."""
    return VOTES_SEPARATOR.join(
        f"{label}:{int(counts.get(label, 0))}" for label in labels if counts.get(label, 0)
    )

"""Golden labels from one or more human judgments per (query, listing) pair.

Every tier is scored against the golden set, so each golden label records how it was reached
(`resolution`, `votes`): a unanimous label and a tie settled by rule are not equally trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.schemas import GOLDEN_COLUMNS, JUDGMENT_KEY, PAIR_KEY, require_columns
from relevance_kit.voting import check_tie_break, vote, votes_text

_SHOWN = 10  # rows named in one error message


def require_labels(
    values: pd.Series, labels: Sequence[str], where: str | Path, allow_null: bool = False
) -> None:
    """Fail naming the rows (index) and the allowed ids when `values` holds a non-taxonomy label."""
    bad = ~values.isin(labels)
    if allow_null:
        bad &= values.notna()
    if bad.any():
        unknown = sorted(set(values[bad].astype(str)))[:_SHOWN]
        raise DataError(
            f"{where}: unknown {values.name} {unknown} at row(s) {list(values.index[bad][:_SHOWN])}"
            f" ({int(bad.sum())} in all); allowed: {list(labels)}"
        )


def validate_judgments(
    judgments: pd.DataFrame, labels: Sequence[str], where: str | Path | None = None
) -> None:
    """Fail on unknown labels and on an annotator judging a pair twice, naming the rows.

    Left in, a typo would count as a label of its own and a repeated row as a second vote.
    """
    where = where or "judgments"
    require_columns(judgments, [*JUDGMENT_KEY, "label"], where)
    require_labels(judgments["label"], labels, where)
    if "adjudicator_label" in judgments:
        require_labels(judgments["adjudicator_label"], labels, where, allow_null=True)
    duplicated = judgments.duplicated(JUDGMENT_KEY, keep=False)
    if duplicated.any():
        rows = judgments.loc[duplicated, JUDGMENT_KEY]
        raise DataError(
            f"{where}: the same (query_id, listing_id, annotator_id) at row(s)"
            f" {list(rows.index[:_SHOWN])}: {rows.drop_duplicates().head(_SHOWN).to_dict('records')}"
        )


def vote_counts(judgments: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Votes per pair: one row per (query_id, listing_id), one column per label in taxonomy order."""
    return (
        judgments.groupby(PAIR_KEY)["label"]
        .value_counts()
        .unstack(fill_value=0)
        .reindex(columns=list(labels), fill_value=0)
    )


def aggregate_golden(
    judgments: pd.DataFrame,
    labels: Sequence[str],
    tie_break: str,
    where: str | Path | None = None,
) -> pd.DataFrame:
    """One golden label per pair: unanimous, else strict majority, else the adjudicator's label,
    else the `tie_break` rule among the labels with the most votes.

    `labels` is the taxonomy, best first, so "most severe" is the one furthest down the list.
    Under "review" a tie gets no label (resolution "unresolved") and goes back to humans.
    A single annotator's pair counts as unanimous (nobody disagreed); resolution says "single".
    """
    check_tie_break(tie_break)
    validate_judgments(judgments, labels, where)
    if judgments.empty:
        return pd.DataFrame(columns=GOLDEN_COLUMNS)
    counts = vote_counts(judgments, labels)
    rows = [dict(zip(counts.columns, row)) for row in counts.to_numpy()]
    votes = [vote(row, labels, tie_break, strict_majority=True) for row in rows]
    n = np.array([v.n for v in votes])
    top = np.array([v.top for v in votes])
    decided = np.array([v.settled for v in votes])  # strict majority; includes unanimous and single
    adjudicated = _adjudicator_labels(judgments, counts.index, where or "judgments").to_numpy()
    has_adjudicator = pd.notna(adjudicated)
    label = [
        v.label if v.settled or not adjudicator else judge
        for v, adjudicator, judge in zip(votes, has_adjudicator, adjudicated)
    ]
    resolution = np.select(
        [n == 1, top == n, decided, has_adjudicator],
        ["single", "unanimous", "majority", "adjudicator"],
        default="unresolved" if tie_break == "review" else tie_break,
    )
    golden = pd.DataFrame(
        {
            "label": pd.Series(label, index=counts.index, dtype=object),
            "n_annotators": n,
            "unanimous": top == n,
            "resolution": resolution,
            "votes": [votes_text(row, labels) for row in rows],
        },
        index=counts.index,
    )
    return golden.reset_index()[GOLDEN_COLUMNS]


def _adjudicator_labels(judgments: pd.DataFrame, pairs: pd.Index, where: str | Path) -> pd.Series:
    """The adjudicator's label per pair (null where none); it may sit on any of the pair's rows."""
    if "adjudicator_label" not in judgments:
        return pd.Series(None, index=pairs, dtype=object)
    given = judgments.dropna(subset=["adjudicator_label"]).groupby(PAIR_KEY)["adjudicator_label"]
    conflicting = given.nunique() > 1
    if conflicting.any():
        raise DataError(
            f"{where}: pair(s) with conflicting adjudicator_label: "
            f"{list(conflicting.index[conflicting][:_SHOWN])}"
        )
    return given.first().reindex(pairs).astype(object)

"""Input checks shared by the sampling functions: each names what was wrong and a few examples,
so a bad join fails here rather than as a KeyError or a silently shrunken sample."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from relevance_kit.errors import DataError

_EXAMPLES = 5


def require_known(values: Iterable[str], known: Iterable[str], what: str) -> None:
    """Fail when any of `values` is not among `known` (e.g. a judged listing not in the catalogue)."""
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DataError(f"{what}: {len(unknown)} unknown id(s), e.g. {unknown[:_EXAMPLES]}")


def require_unique(frame: pd.DataFrame, key: list[str], what: str) -> None:
    """Fail on duplicate keys: a pair or query counted twice would skew every share."""
    duplicated = frame[frame.duplicated(key, keep=False)]
    if not duplicated.empty:
        examples = duplicated[key].drop_duplicates().head(_EXAMPLES).to_dict("records")
        raise DataError(f"{what}: duplicate {key} rows, e.g. {examples}")

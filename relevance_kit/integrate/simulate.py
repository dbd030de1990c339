"""Search simulation: rank the held-out queries' candidates under the baseline, each mode
alone and all modes stacked (config order), and write every ranking as a result log
(relevance_kit.integrate.results) so the A/B analysis reads simulation and live logs alike."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from relevance_kit.integrate.modes import Mode, SearchState, positions
from relevance_kit.integrate.ranker import RankerSpec

BASELINE = "baseline"
RANKER = "ranker"  # the learned ranker without any relevance input: the "without" arm
STACKED = "stacked"


def arm_names(modes: Sequence[Mode]) -> list[str]:
    """Each mode's name (suffixed when a mode appears twice)."""
    names: list[str] = []
    for mode in modes:
        name = mode.name
        while name in names:
            name += "_"
        names.append(name)
    return names


def ranker_arms(modes: Sequence[Mode]) -> list[str]:
    """The arms whose ranker learns from predicted relevance (compared with `ranker`)."""
    names = [name for name, mode in zip(arm_names(modes), modes) if mode.trains_ranker]
    return names + [STACKED] if names and len(modes) > 1 else names


def simulate(state: SearchState, modes: Sequence[Mode]) -> pd.DataFrame:
    """The result log of every arm: baseline, `ranker` (when a mode trains the ranker), each
    mode alone on top of the baseline, and `stacked` (when there are two or more modes).
    `state.candidates` must hold the baseline `score` and `shown` = True."""
    arms: dict[str, SearchState] = {BASELINE: state}
    if any(mode.trains_ranker for mode in modes):
        cands = state.candidates.copy()
        cands["score"] = state.rank_with(RankerSpec(), cands)
        arms[RANKER] = SearchState(cands, state.labels, state.k, state.rank_with)
    for name, mode in zip(arm_names(modes), modes):
        arms[name] = mode.apply(state)
    if len(modes) > 1:
        stacked = state
        for mode in modes:
            stacked = mode.apply(stacked)
        arms[STACKED] = stacked
    return pd.concat([result_rows(arm, s.candidates) for arm, s in arms.items()], ignore_index=True)


def result_rows(arm: str, candidates: pd.DataFrame) -> pd.DataFrame:
    """One arm's ranking in the result-log format (a request per query; rank null = hidden)."""
    pos = positions(candidates)
    rank = pd.array(np.where(candidates["shown"].to_numpy(), pos + 1, 0), dtype="Int64")
    rank[~candidates["shown"].to_numpy()] = pd.NA
    return pd.DataFrame(
        {
            "request_id": candidates["query_id"].to_numpy(),
            "query_id": candidates["query_id"].to_numpy(),
            "arm": arm,
            "rank": rank,
            "listing_id": candidates["listing_id"].to_numpy(),
            "label": candidates["label"].to_numpy(dtype=object),
        }
    )

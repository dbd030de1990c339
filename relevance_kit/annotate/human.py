"""Bring-your-own-labels: the `human` annotator replays existing human judgments."""

from __future__ import annotations

import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.schemas import JUDGMENT_SCHEMA, PAIR_KEY, require_columns


def replay_human_labels(pool: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    """The human judgments of every pool pair. A pool pair without a human label is an
    error: replaying must never invent or drop labels."""
    require_columns(pool, PAIR_KEY, "annotate pool")
    require_columns(judgments, JUDGMENT_SCHEMA, "judgments")
    human = judgments[judgments["source"] == "human"]
    labelled = pool[PAIR_KEY].merge(human, on=PAIR_KEY, how="left", indicator=True)
    missing = labelled[labelled["_merge"] == "left_only"]
    if len(missing):
        examples = missing[PAIR_KEY].head(5).to_dict("records")
        raise DataError(
            f"annotator=human: {len(missing)} annotate-pool pair(s) have no human label, e.g. {examples}; "
            "use an LLM annotator for unlabelled pools"
        )
    return labelled.drop(columns="_merge")[JUDGMENT_SCHEMA.names].reset_index(drop=True)

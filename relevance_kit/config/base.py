"""What the config groups share: the strict base model, and the metric, probability and
scorer types and check that more than one group uses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


RelevanceMetric = Literal["pct_relevant", "pct_irrelevant", "ndcg"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def _check_scorer(scorer: str) -> str:
    if scorer not in ("student", "teacher") and not scorer.endswith(".parquet"):
        raise ValueError(
            f"scorer = {scorer!r}: use 'teacher', 'student' or the path of a predictions .parquet with p_<label> columns"
        )
    return scorer

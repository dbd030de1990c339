"""The `sampling` group (conf/sampling/): query splits and the pair samples of each."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from relevance_kit.config.base import Strict
from relevance_kit.sampling.targeted import TargetRule


def _split_size(value: float | str) -> int | float | str:
    ok = (
        (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        or (isinstance(value, float) and 0.0 < value < 1.0)
        or value == "rest"
    )
    if not ok:
        raise ValueError(
            f"{value!r} is not a split size; use a count of queries > 0 (e.g. 4), a fraction of "
            "the queries in (0, 1) (e.g. 0.25), or 'rest' (the queries the other splits leave)"
        )
    return value


SplitSize = Annotated[int | float | str, AfterValidator(_split_size)]
SPLITS = ("golden", "annotate", "teacher", "unlabeled")


class AnnotateSampling(Strict):
    strata: list[str]
    # The annotation budget in queries: a seeded draw of the annotate split's queries, each
    # smaller budget a subset of every larger one (a learning curve's points are nested).
    max_queries: Annotated[int, Field(gt=0)] | None
    max_pairs: Annotated[int, Field(gt=0)] | None
    targeted: list[TargetRule]


class GoldenSampling(Strict):
    max_pairs_per_query: Annotated[int, Field(gt=0)] | None


class UnlabeledSampling(Strict):
    retriever: Literal["bm25"]
    top_k: Annotated[int, Field(gt=0)]


class SamplingConfig(Strict):
    name: str
    splits: dict[Literal["golden", "annotate", "teacher", "unlabeled"], SplitSize]
    max_queries: Annotated[int, Field(gt=0)] | None
    query_strata: list[Literal["query_length_bucket", "dominant_category"]]
    annotate: AnnotateSampling
    golden: GoldenSampling
    unlabeled: UnlabeledSampling

    @model_validator(mode="after")
    def _all_splits(self) -> SamplingConfig:
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"splits must give a size for {list(SPLITS)}; missing {missing}")
        if list(self.splits.values()).count("rest") > 1:
            raise ValueError("at most one split may take 'rest'")
        counts = sum(size for size in self.splits.values() if isinstance(size, int))
        if self.max_queries is not None and counts > self.max_queries:
            raise ValueError(
                f"splits {dict(self.splits)} need {counts} queries, more than max_queries = {self.max_queries}"
            )
        return self

"""The `integration` group (conf/integration/): the ranking arms, their baseline and the
offline A/B analysis."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from relevance_kit.config.base import RelevanceMetric, Strict, _check_scorer


class PopularityBaseline(Strict):
    """Weights of the baseline ranker's per-query standardised BM25 and log1p(rating_count)."""

    bm25_weight: Annotated[float, Field(ge=0.0)]
    popularity_weight: Annotated[float, Field(ge=0.0)]


class AbTestConfig(Strict):
    bootstrap_resamples: Annotated[int, Field(ge=100)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)]
    power: Annotated[float, Field(gt=0.5, lt=1.0)]
    detect: dict[RelevanceMetric, Annotated[float, Field(gt=0.0)]]  # differences to size for


class IntegrationConfig(Strict):
    name: str
    k: Annotated[int, Field(gt=0)]
    scorer: str  # student | path of a predictions parquet covering every pair
    retrieve_k: Annotated[int, Field(ge=0)]  # BM25-retrieved unjudged candidates per query
    unjudged: Literal["exclude", "irrelevant"]
    baseline: PopularityBaseline
    ranker: dict[str, Any]  # LightGBM LGBMRanker parameters
    modes: list[dict[str, Any]]  # each {_target_: relevance_kit.integrate.modes.<Mode>, params}
    abtest: AbTestConfig

    @model_validator(mode="after")
    def _targets(self) -> IntegrationConfig:
        _check_scorer(self.scorer)
        for i, mode in enumerate(self.modes):
            if not isinstance(mode.get("_target_"), str):
                raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
                    f"modes[{i}] = {mode}: needs `_target_`, e.g. relevance_kit.integrate.modes.Filter"
                )
        return self

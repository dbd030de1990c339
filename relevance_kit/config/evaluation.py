"""The `evaluation` group (conf/evaluation/): the baselines and the tier table's settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from relevance_kit.config.base import Strict


class LtrGbdtConfig(Strict):
    """The learning-to-rank baseline (LightGBM over lexical features and, if `semantic`, the
    zero-shot MiniLM cosine); trees stop early on `validation_fraction` of the training queries."""

    semantic: bool
    n_estimators: Annotated[int, Field(ge=1)]
    learning_rate: Annotated[float, Field(gt=0.0)]
    num_leaves: Annotated[int, Field(ge=2)]
    early_stopping_rounds: Annotated[int, Field(ge=1)]
    validation_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    threads: Annotated[int, Field(ge=1)]


class EvaluationConfig(Strict):
    name: str
    baselines: list[Literal["majority", "bm25", "minilm_zero_shot", "ltr_gbdt"]]
    ltr_gbdt: LtrGbdtConfig
    bootstrap_resamples: Annotated[int, Field(ge=50)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    reference_tier: str
    ndcg_k: Annotated[int, Field(ge=1)]  # the threshold-free nDCG@k of the tier table

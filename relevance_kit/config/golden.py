"""The `golden` group (conf/golden/): the human annotation files, how they aggregate, and the
label-noise ceiling measured on them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from relevance_kit.config.base import Probability, Strict

PositiveInt = Annotated[int, Field(gt=0)]


class NoiseCeilingConfig(Strict):
    """Dirichlet mixtures fitted to the panel means (relevance_kit.golden.noise_ceiling)."""

    mixtures: Annotated[list[PositiveInt], Field(min_length=1)]  # components of each fit
    restarts: PositiveInt  # fits per mixture size, each from its own seeded start
    simulated_pairs: PositiveInt
    min_fit_p_value: Probability  # accept a fit whose chi-square p reaches this


class GoldenConfig(Strict):
    name: str
    annotation_files: list[str]
    tie_break: Literal["most_severe", "least_severe", "review"]
    review_formats: list[Literal["csv", "label_studio"]]
    noise_ceiling: NoiseCeilingConfig | None  # null: not measured

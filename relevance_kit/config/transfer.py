"""The `transfer` group (conf/transfer/): another dataset whose golden set this experiment's
tiers are scored on, threshold-free (does what they learned carry over?). Its data,
guidelines and sampling are that dataset's own groups, so its golden set is the one its own
experiment builds."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from relevance_kit.config.base import Strict
from relevance_kit.config.data import DataConfig
from relevance_kit.config.guidelines import GuidelinesConfig
from relevance_kit.config.sampling import SamplingConfig

TransferTier = Literal["bm25", "minilm_zero_shot", "teacher", "student"]


class TransferConfig(Strict):
    name: str
    data: DataConfig | None  # null: no transfer target (the stage records that and stops)
    guidelines: GuidelinesConfig | None
    sampling: SamplingConfig | None
    tiers: list[TransferTier]

    @model_validator(mode="after")
    def _all_or_none(self) -> TransferConfig:
        given = [k for k in ("data", "guidelines", "sampling") if getattr(self, k) is not None]
        if given and len(given) < 3:
            raise ValueError(
                f"transfer.{{data, guidelines, sampling}} are given together or not at all; given: {given}"
            )
        if given and not self.tiers:
            raise ValueError("transfer.tiers is empty: name the tiers to score on the target")
        return self

    @property
    def enabled(self) -> bool:
        return self.data is not None

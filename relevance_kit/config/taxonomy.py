"""The `taxonomy` group (conf/taxonomy/): the labels, best first, and the maps from each
source scheme to them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from relevance_kit.config.base import Strict


class Label(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    display: str
    gain: Annotated[float, Field(ge=0.0, le=1.0)]
    definition: str


class TaxonomyConfig(Strict):
    """Labels best first: that order is the ordinal scale."""

    name: str
    labels: Annotated[list[Label], Field(min_length=2)]
    source_maps: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def _consistent(self) -> TaxonomyConfig:
        ids = self.ids
        if len(set(ids)) != len(ids):
            raise ValueError(f"label ids must be unique, got {ids}")
        gains = [label.gain for label in self.labels]
        if gains != sorted(gains, reverse=True):
            raise ValueError(
                f"labels must be listed best first (gains non-increasing), got {gains}"
            )
        for scheme, mapping in self.source_maps.items():
            unknown = sorted(set(mapping.values()) - set(ids))
            if unknown:
                raise ValueError(
                    f"source_maps.{scheme} maps to unknown label(s) {unknown}; labels are {ids}"
                )
        return self

    @property
    def ids(self) -> list[str]:
        return [label.id for label in self.labels]

    @property
    def display(self) -> dict[str, str]:
        return {label.id: label.display for label in self.labels}

    @property
    def gains(self) -> dict[str, float]:
        return {label.id: label.gain for label in self.labels}

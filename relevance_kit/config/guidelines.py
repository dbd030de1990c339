"""The `guidelines` group (conf/guidelines/): the annotation guideline's dated versions and
their examples."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, model_validator

from relevance_kit.config.base import Strict
from relevance_kit.errors import ConfigError


class GuidelineExample(Strict):
    query: str
    listing: str
    labels: dict[str, str]  # taxonomy name -> label id, so one example serves every taxonomy
    rationale: str


class GuidelineVersion(Strict):
    version: str
    effective_from: date
    text: str
    examples: list[GuidelineExample]


class GuidelinesConfig(Strict):
    name: str
    versions: Annotated[list[GuidelineVersion], Field(min_length=1)]

    @model_validator(mode="after")
    def _ordered(self) -> GuidelinesConfig:
        dates = [v.effective_from for v in self.versions]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError(f"versions must have increasing effective_from dates, got {dates}")
        return self

    def version_at(self, when: date) -> GuidelineVersion:
        """The guideline version in force on `when`."""
        in_force = [v for v in self.versions if v.effective_from <= when]
        if not in_force:
            first = self.versions[0]
            raise ConfigError(
                f"guidelines.versions: no version in force on {when}; the first is "
                f"{first.version!r}, effective from {first.effective_from}"
            )
        return in_force[-1]

    @property
    def current(self) -> GuidelineVersion:
        return self.versions[-1]

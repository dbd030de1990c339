"""The `data` group (conf/data/): the dataset's files, its tables and how its ratings map to
source labels."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from relevance_kit.config.base import Strict
from relevance_kit.data.spec import DataTables, RatingBins


class DataFile(Strict):
    filename: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    url: str | None  # null: read from data.mirror_dirs only


class DataConfig(Strict):
    name: str
    loader: dict[str, Any]  # {_target_: a loader; other keys are its options}
    mirror_dirs: list[str]
    download: bool
    files: dict[str, DataFile]
    tables: DataTables
    source_scheme: str
    rating_to_source: dict[str, str] | None  # categorical ratings: raw value -> source label
    rating_bins: RatingBins | None  # numeric ratings: bins -> source label
    annotator_id: str  # judgments without an annotator column
    judged_at: date
    on_bad_rows: Literal["error", "quarantine"]

    @field_validator("loader")
    @classmethod
    def _target(cls, loader: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(loader.get("_target_"), str):
            raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
                f"{loader} needs `_target_`, e.g. relevance_kit.data.table.load_tables"
            )
        return loader

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if (self.rating_to_source is None) == (self.rating_bins is None):
            raise ValueError(
                "give exactly one of rating_to_source (categorical ratings) and rating_bins (numeric grades)"
            )
        for role in ("listings", "queries", "judgments"):
            spec = getattr(self.tables, role)
            if spec is not None and spec.file not in self.files:
                raise ValueError(
                    f"tables.{role}.file = {spec.file!r} is not one of files: {sorted(self.files)}"
                )
        return self

    @property
    def source_labels(self) -> list[str]:
        """Every source-scheme label the ratings can map to."""
        if self.rating_to_source is not None:
            return sorted(set(self.rating_to_source.values()))
        return sorted({b.source for b in self.rating_bins.bins}) if self.rating_bins else []

"""What `data.tables` and `data.rating_bins` say: the config models of the table loader
(`relevance_kit.data.table`), validated with the rest of params.yaml by `relevance_kit.config`."""

from __future__ import annotations

import codecs
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    """Unknown keys are errors (as everywhere in the config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# The schema fields a table's `columns` may map (schema field -> source column).
TABLE_FIELDS = {
    "listings": (
        "listing_id", "title", "description", "bullet_points", "attributes", "variations", "category",
        "brand", "color", "image_urls", "price", "rating", "rating_count",
    ),
    "queries": ("query_id", "text"),
    "judgments": ("query_id", "query_text", "listing_id", "rating", "annotator_id"),
}  # fmt: skip
REQUIRED_FIELDS = {
    "listings": ("listing_id", "title"),
    "queries": ("text",),
    "judgments": ("listing_id", "rating"),
}
LIST_FIELDS = ("bullet_points", "variations", "category", "image_urls")


class TableSpec(_Strict):
    """One table read from one of `data.files`: its format, how to open it, and the map from
    schema fields to its columns (JSON: keys of each record)."""

    file: str  # a key of data.files
    format: Literal["csv", "tsv", "parquet", "jsonl", "json"]
    compression: Literal["infer", "none", "gzip", "zip"]  # infer: by .gz / .zip suffix
    member: str | None  # the file inside a .zip; needed when it holds several
    encoding: str
    records: str | None  # json: dotted path of the list of records inside the document
    explode: str | None  # json/jsonl: a list in each record whose items become rows
    columns: dict[str, str]
    list_delimiters: dict[str, str]  # list field -> delimiter of its text form
    attributes_format: Literal["pairs", "json"]  # pairs: key:value|key:value
    attribute_flags: dict[str, dict[str, str]]  # column -> attributes set when it is true

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(
                f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)"
            ) from None
        return encoding

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        if self.records is not None and self.format != "json":
            raise ValueError(
                f"records is for format 'json' (a document holding a list), not {self.format!r}"
            )
        if self.explode is not None and self.format not in ("json", "jsonl"):
            raise ValueError(
                f"explode is for JSON records (format json or jsonl), not {self.format!r}"
            )
        not_lists = sorted(set(self.list_delimiters) - set(LIST_FIELDS))
        if not_lists:
            raise ValueError(
                f"list_delimiters names {not_lists}: only list fields {list(LIST_FIELDS)} take one"
            )
        return self


class DataTables(_Strict):
    """Three tables, or one denormalised file: `listings` and `judgments` name the same file
    (its rows carry query text, listing id and listing fields) and `queries` is left out
    (query ids are derived from the judgments' query text)."""

    listings: TableSpec
    judgments: TableSpec
    queries: TableSpec | None

    @model_validator(mode="after")
    def _columns(self) -> DataTables:
        for role in ("listings", "queries", "judgments"):
            spec = getattr(self, role)
            if spec is None:
                continue
            unknown = sorted(set(spec.columns) - set(TABLE_FIELDS[role]))
            if unknown:
                raise ValueError(
                    f"{role}.columns maps unknown field(s) {unknown}; fields: {list(TABLE_FIELDS[role])}"
                )
            missing = [f for f in REQUIRED_FIELDS[role] if f not in spec.columns]
            if missing:
                raise ValueError(f"{role}.columns must map {missing} (schema field: source column)")
        judged = self.judgments.columns
        if "query_id" not in judged and "query_text" not in judged:
            raise ValueError("judgments.columns must map query_id or query_text")
        if self.queries is None and "query_text" not in judged:
            raise ValueError(
                "without a queries table, judgments.columns must map query_text (ids are derived from it)"
            )
        if (
            self.queries is not None
            and "query_id" in judged
            and "query_id" not in self.queries.columns
        ):
            raise ValueError(
                "judgments name queries by query_id, so queries.columns must map query_id too"
            )
        return self


class RatingBin(_Strict):
    min: float  # inclusive lower bound
    source: str  # the source-scheme label of grades from here up to the next bin


class RatingBins(_Strict):
    """Numeric (e.g. averaged) grades: each bin takes grades from its `min` up to the next bin."""

    range: tuple[float, float]  # grades outside are bad rows
    bins: Annotated[list[RatingBin], Field(min_length=1)]  # highest first
    disagreed_if_fractional: bool  # a mean that is not a whole grade: raters disagreed
    panel_size: Annotated[int, Field(gt=0)]  # raters whose mean each grade is (1: one rater)

    def source_of(self, grade: float) -> str:
        """The source label of `grade`: the first bin (highest first) whose `min` it reaches."""
        return next(b.source for b in self.bins if grade >= b.min)

    @model_validator(mode="after")
    def _ordered(self) -> RatingBins:
        low, high = self.range
        mins = [b.min for b in self.bins]
        if low >= high:
            raise ValueError(f"range must be [low, high] with low < high, got {list(self.range)}")
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError(
                f"bins must be listed highest first with distinct min, got mins {mins}"
            )
        if mins[-1] != low or mins[0] > high:
            raise ValueError(
                f"bins must cover the range {list(self.range)}: the last min must be {low}, got mins {mins}"
            )
        return self

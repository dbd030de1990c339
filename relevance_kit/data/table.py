"""The table loader: any dataset described by `conf/data/<name>.yaml` alone (files, shapes,
column map, rating map) -> the listing / query / judgment frames of `relevance_kit.schemas`.

Two shapes: three tables (listings, queries, judgments), or one denormalised file whose rows
carry query text, listing id and listing fields together (`tables.listings.file` ==
`tables.judgments.file`, no `tables.queries`). Ratings are categorical (`rating_to_source`) or
numeric grades cut into bins (`rating_bins`); an annotator column lets several judgments per
pair through to the golden stage's agreement measures. Every row that does not fit is a bad
row (error or quarantine, `BadRows`) naming file, row and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from relevance_kit.config import DataConfig
from relevance_kit.data import fields as F
from relevance_kit.data.bad_rows import BadRows
from relevance_kit.data.readers import RawTable, read_table
from relevance_kit.data.spec import LIST_FIELDS, RatingBins, TableSpec
from relevance_kit.errors import DataError
from relevance_kit.schemas import LISTING_SCHEMA, PREPARED_JUDGMENT_SCHEMA, QUERY_SCHEMA


@dataclass(frozen=True)
class JudgmentContext:
    """What a raw rating needs to become a judgment row."""

    source_to_label: Mapping[str, str]  # source-scheme label -> taxonomy label id
    guideline_version: str
    judged_at: datetime


@dataclass
class Tables:
    listings: pd.DataFrame
    queries: pd.DataFrame
    judgments: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)  # shape-specific facts for the report


def load_tables(
    data: DataConfig, paths: Mapping[str, Path], context: JudgmentContext, bad: BadRows
) -> Tables:
    """Read and normalise the configured tables (the default `data.loader`)."""
    cache: dict[tuple[Any, ...], RawTable] = {}

    def read(role: str, spec: TableSpec) -> RawTable:
        key = (
            spec.file,
            spec.format,
            spec.compression,
            spec.member,
            spec.encoding,
            spec.records,
            spec.explode,
        )
        if key not in cache:
            cache[key] = read_table(paths[spec.file], spec, bad)
        _require_columns(cache[key], spec, role)
        return cache[key]

    t = data.tables
    denormalised = t.listings.file == t.judgments.file
    listings, conflicts = _listings(read("listings", t.listings), t.listings, bad, denormalised)
    queries = (
        _queries(read("queries", t.queries), t.queries, bad) if t.queries is not None else None
    )
    rating = _rating_reader(data)
    judgments, derived = _judgments(
        read("judgments", t.judgments), t.judgments, data, queries, listings, rating, context, bad
    )
    if queries is None:
        queries = _query_frame(derived)
    notes: dict[str, Any] = {"shape": "denormalised" if denormalised else "three tables"}
    if denormalised:
        notes["listings_with_conflicting_fields"] = len(conflicts)
        notes["conflicting_listing_ids"] = conflicts[:20]  # first row's fields kept
    return Tables(listings, queries, judgments, notes)


def _require_columns(table: RawTable, spec: TableSpec, role: str) -> None:
    """Every mapped column must exist; the error names file, column asked and columns found."""
    wanted = [*spec.columns.items(), *((flag, flag) for flag in spec.attribute_flags)]
    for schema_field, column in wanted:
        if column not in table.columns:
            raise DataError(
                f"{table.file}: column {column!r} (data.tables.{role}.columns.{schema_field}) not found; "
                f"columns found: {table.columns}"
            )


# --- listings --------------------------------------------------------------------------------


def _listings(
    table: RawTable, spec: TableSpec, bad: BadRows, denormalised: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Listings in file order. In a denormalised file a listing repeats on every row that
    judges it: repeats are expected, the first row's fields are kept and ids whose fields
    differ are returned (they go in the report, not the quarantine)."""
    rows: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, None] = {}
    id_column = spec.columns["listing_id"]
    for where, record in table.rows:
        try:
            row = _listing_row(record, spec)
        except F.FieldError as exc:
            bad.add(table.file, where, f"bad field: {exc}", record)
            continue
        lid = row["listing_id"]
        if not lid:
            bad.add(table.file, where, f"missing listing id: {id_column} is empty", record)
        elif not row["title"]:
            bad.add(table.file, where, f"empty title: listing {lid}", record)
        elif lid not in rows:
            rows[lid] = row
        elif not denormalised:
            bad.add(table.file, where, f"duplicate listing: {lid}", record)
        elif row != rows[lid]:
            conflicts[lid] = None
    return pd.DataFrame(list(rows.values()), columns=LISTING_SCHEMA.names), list(conflicts)


def _listing_row(record: Mapping[str, Any], spec: TableSpec) -> dict[str, Any]:
    cols = spec.columns

    def get(name: str) -> Any:
        return record.get(cols[name]) if name in cols else None

    row: dict[str, Any] = {
        "listing_id": F.identifier(get("listing_id"), "listing_id"),
        "title": F.text(get("title"), "title"),
        "description": F.text(get("description"), "description"),
        "brand": F.optional_text(get("brand"), "brand"),
        "color": F.optional_text(get("color"), "color"),
        "price": F.number(get("price"), "price"),
        "rating": F.number(get("rating"), "rating"),
        "rating_count": F.count(get("rating_count"), "rating_count"),
        "entities": {},
    }
    for name in LIST_FIELDS:
        row[name] = F.string_list(get(name), name, spec.list_delimiters.get(name))
    attributes = F.attributes(get("attributes"), "attributes", spec.attributes_format)
    for flag, values in spec.attribute_flags.items():
        if F.is_true(record.get(flag)):
            attributes.update(values)
    row["attributes"] = attributes
    return {name: row[name] for name in LISTING_SCHEMA.names}


# --- queries ---------------------------------------------------------------------------------


def _queries(table: RawTable, spec: TableSpec, bad: BadRows) -> pd.DataFrame:
    """Queries in file order; two texts that get one id (they differ only in case or
    surrounding spaces) are one query: the second is a bad row, never a silent duplicate id."""
    rows: dict[str, str] = {}
    for where, record in table.rows:
        try:
            text = F.text(record.get(spec.columns["text"]), "text")
            given = spec.columns.get("query_id")
            qid = F.identifier(record.get(given), "query_id") if given else F.query_id(text)
        except F.FieldError as exc:
            bad.add(table.file, where, f"bad field: {exc}", record)
            continue
        if not text:
            bad.add(
                table.file,
                where,
                f"empty query: {spec.columns['text']} is missing or blank",
                record,
            )
        elif not qid:
            bad.add(
                table.file, where, f"missing query id: {spec.columns['query_id']} is empty", record
            )
        elif qid in rows:
            bad.add(
                table.file,
                where,
                f"duplicate query: {text!r} has the id of {rows[qid]!r} (ids ignore case)",
                record,
            )
        else:
            rows[qid] = text
    return _query_frame(rows)


def _query_frame(texts: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"query_id": list(texts), "text": list(texts.values())}, columns=QUERY_SCHEMA.names
    )


# --- judgments -------------------------------------------------------------------------------

Rating = tuple[str, float | None, bool | None]  # source label, grade, raters disagreed


def _judgments(
    table: RawTable,
    spec: TableSpec,
    data: DataConfig,
    queries: pd.DataFrame | None,
    listings: pd.DataFrame,
    rating: Callable[[Any], Rating],
    ctx: JudgmentContext,
    bad: BadRows,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Judgment rows in file order, and the queries derived from their text (when there is
    no queries table: id -> first text seen)."""
    known_queries = None if queries is None else set(queries["query_id"])
    known_listings = set(listings["listing_id"])
    cols = spec.columns
    derived: dict[str, str] = {}
    rows, seen = [], set()
    for where, record in table.rows:
        if bad.has(table.file, where):  # a denormalised row already set aside for its listing
            continue
        try:
            text = (
                F.text(record.get(cols["query_text"]), "query_text") if "query_text" in cols else ""
            )
            qid = (
                F.identifier(record.get(cols["query_id"]), "query_id")
                if "query_id" in cols
                else F.query_id(text)
            )
            listing_id = F.identifier(record.get(cols["listing_id"]), "listing_id")
            annotator = (
                F.identifier(record.get(cols["annotator_id"]), "annotator_id")
                if "annotator_id" in cols
                else data.annotator_id
            )
        except F.FieldError as exc:
            bad.add(table.file, where, f"bad field: {exc}", record)
            continue
        raw, reason = record.get(cols["rating"]), ""
        try:
            source, grade, disagreed = rating(raw)
        except F.FieldError as exc:
            source = None
            reason = str(exc)
        if "query_id" not in cols and not text:
            bad.add(
                table.file, where, f"empty query: {cols['query_text']} is missing or blank", record
            )
        elif known_queries is not None and qid not in known_queries:
            bad.add(
                table.file, where, f"unknown query: {text or qid!r} is not in the query set", record
            )
        elif source is None:
            bad.add(table.file, where, reason, record)
        elif listing_id not in known_listings:
            bad.add(
                table.file, where, f"missing listing: {listing_id!r} is not in the listings", record
            )
        elif not annotator:
            bad.add(
                table.file, where, f"missing annotator: {cols['annotator_id']} is empty", record
            )
        elif (qid, listing_id, annotator) in seen:
            bad.add(
                table.file,
                where,
                f"duplicate pair: ({text or qid!r}, {listing_id}) by {annotator}",
                record,
            )
        else:
            seen.add((qid, listing_id, annotator))
            derived.setdefault(qid, text)
            rows.append(
                {
                    "query_id": qid,
                    "listing_id": listing_id,
                    "annotator_id": annotator,
                    "label": ctx.source_to_label[source],
                    "source_label": source,
                    "rationale": None,
                    "confidence": None,
                    "source": "human",
                    "guideline_version": ctx.guideline_version,
                    "created_at": ctx.judged_at,
                    "grade": grade,
                    "raters_disagreed": disagreed,
                }
            )
    if not rows:
        raise DataError(
            f"{table.file}: no valid judgments: all {len(table.rows)} judgment row(s) are bad "
            f"({bad.counts() or 'no rows at all'}); check data.tables.judgments and the rating map"
        )
    return pd.DataFrame(rows, columns=PREPARED_JUDGMENT_SCHEMA.names), derived


def _rating_reader(data: DataConfig) -> Callable[[Any], Rating]:
    """raw rating -> (source label, numeric grade, raters disagreed), or FieldError."""
    if data.rating_bins is not None:
        return lambda raw: _binned(raw, data.rating_bins)
    categorical = data.rating_to_source or {}
    allowed = sorted(categorical)

    def lookup(raw: Any) -> Rating:
        if isinstance(raw, (dict, list)):
            raise F.FieldError(f"bad rating: {raw!r} is not a single value")
        source = categorical.get(F.rating_key(raw))
        if source is None:
            raise F.FieldError(f"unknown label: rating {raw!r}, allowed {allowed}")
        return source, None, None

    return lookup


def _binned(raw: Any, bins: RatingBins) -> Rating:
    grade = F.number(raw, "rating")
    low, high = bins.range
    if grade is None:
        raise F.FieldError("bad rating: the rating is empty")
    if not low <= grade <= high:
        raise F.FieldError(f"bad rating: {raw!r} is outside the range [{low:g}, {high:g}]")
    source = bins.source_of(grade)
    disagreed = not grade.is_integer() if bins.disagreed_if_fractional else None
    return source, grade, disagreed

"""Files human annotators fill in: a spreadsheet-friendly CSV and Label Studio tasks/exports.

Imports accept a label's id or its display name in any case, because people type what they
see; anything else is an error naming the file and row, never a guess. Rows left unlabelled
(blank cells, cancelled or empty annotations) are returned as `skipped` with the reason, so the
stage can count them and send them back for review.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.golden.aggregate import require_labels, validate_judgments
from relevance_kit.io import atomic_path, write_json
from relevance_kit.schemas import JUDGMENT_SCHEMA, PAIR_KEY, require_columns
from relevance_kit.text import DEFAULT_FIELDS, listing_text

log = logging.getLogger(__name__)

# Listing fields shown next to the title in the review CSV, when the pairs have them.
CSV_LISTING_COLUMNS = ("brand", "color", "category")
# Names in the Label Studio labeling config; imports look for the same names.
LS_QUERY, LS_LISTING, LS_CHOICES = "query", "listing", "relevance"
SKIPPED_COLUMNS = [*PAIR_KEY, "where", "reason"]


@dataclass(frozen=True)
class ReviewImport:
    """Judgments read from a review file, and the rows that carried no label (with why)."""

    judgments: pd.DataFrame  # JUDGMENT_SCHEMA columns, source "human"
    skipped: pd.DataFrame  # SKIPPED_COLUMNS


def label_lookup(labels: Sequence[str], display: Mapping[str, str]) -> dict[str, str]:
    """Map each label id and display name, case-folded, to the label id.

    Fails when one name would mean two labels, since an import could then not tell them apart.
    """
    lookup: dict[str, str] = {}
    for label in labels:
        for name in (label, display.get(label, label)):
            key = name.strip().casefold()
            if lookup.setdefault(key, label) != label:
                raise ConfigError(f"taxonomy: {name!r} names both {lookup[key]!r} and {label!r}")
    return lookup


# --- CSV -------------------------------------------------------------------------------------


def export_review_csv(
    pairs: pd.DataFrame,
    path: str | Path,
    labels: Sequence[str],
    display: Mapping[str, str],
    listing_columns: Sequence[str] = CSV_LISTING_COLUMNS,
) -> None:
    """Write a CSV to fill in: context columns, then empty label, annotator_id and comment.

    `pairs` needs query_id, listing_id, query (text) and title; listing_columns, current_label
    (shown by display name) and votes are copied when present. UTF-8 with a BOM, so Excel
    shows non-ASCII titles correctly.
    """
    require_columns(pairs, [*PAIR_KEY, "query", "title"], "pairs")
    sheet = pairs[[*PAIR_KEY, "query", "title"]].copy()
    for column in (c for c in listing_columns if c in pairs):
        sheet[column] = [listing_text({column: value}, [column]) for value in pairs[column]]
    if "current_label" in pairs:
        require_labels(pairs["current_label"], labels, "pairs", allow_null=True)
        sheet["current_label"] = pairs["current_label"].map(lambda id_: _display(id_, display))
    if "votes" in pairs:
        sheet["votes"] = pairs["votes"]
    for column in ("label", "annotator_id", "comment"):
        sheet[column] = ""
    with atomic_path(path) as tmp:
        sheet.to_csv(tmp, index=False, encoding="utf-8-sig")


def import_review_csv(
    path: str | Path,
    labels: Sequence[str],
    display: Mapping[str, str],
    annotator_id: str | None = None,
    guideline_version: str | None = None,
) -> ReviewImport:
    """Read a filled-in review CSV. `annotator_id` fills blank annotator cells (one person's
    file); without it a labelled row with no annotator is an error. Errors name spreadsheet
    rows: the header is row 1."""
    path = Path(path)
    try:
        sheet = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig"
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read review CSV: {exc}") from exc
    require_columns(sheet, [*PAIR_KEY, "label"], path)
    sheet.index = sheet.index + 2
    sheet = sheet.apply(lambda column: column.str.strip())
    for column in ("annotator_id", "comment"):
        if column not in sheet:
            sheet[column] = ""
    if annotator_id is not None:
        sheet["annotator_id"] = sheet["annotator_id"].replace("", annotator_id)

    blank = sheet["label"] == ""
    skipped = sheet.loc[blank, PAIR_KEY].assign(
        where=[f"row {row}" for row in sheet.index[blank]], reason="blank label"
    )
    filled = sheet[~blank]
    ids = filled["label"].str.casefold().map(label_lookup(labels, display))
    if ids.isna().any():
        raise DataError(
            f"{path}: unknown label(s) {sorted(set(filled['label'][ids.isna()]))} at row(s) "
            f"{list(filled.index[ids.isna()])}; allowed (id or display name, any case): "
            f"{_allowed(labels, display)}"
        )
    for column in [*PAIR_KEY, "annotator_id"]:
        empty = filled[column] == ""
        if empty.any():
            raise DataError(f"{path}: labelled row(s) {list(filled.index[empty])} have no {column}")
    judgments = _judgments(
        filled[[*PAIR_KEY, "annotator_id"]].assign(
            label=ids,
            source_label=filled["label"],
            rationale=filled["comment"].mask(filled["comment"] == ""),
            guideline_version=guideline_version,
        )
    )
    return _finish(judgments, skipped, labels, path)


# --- Label Studio ----------------------------------------------------------------------------


def label_studio_config(labels: Sequence[str], display: Mapping[str, str]) -> str:
    """The labeling-interface XML: query and listing text, one single-choice relevance answer
    per label (shown by display name, best first); an answer is required to submit."""
    label_lookup(labels, display)  # display names must be unambiguous to import them back
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Query")
    ET.SubElement(view, "Text", name=LS_QUERY, value=f"${LS_QUERY}")
    ET.SubElement(view, "Header", value="Listing")
    ET.SubElement(view, "Text", name=LS_LISTING, value=f"${LS_LISTING}")
    choices = ET.SubElement(
        view, "Choices", name=LS_CHOICES, toName=LS_LISTING, choice="single", required="true"
    )
    for label in labels:
        ET.SubElement(choices, "Choice", value=_display(label, display))
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def export_label_studio_tasks(
    pairs: pd.DataFrame,
    path: str | Path,
    labels: Sequence[str],
    display: Mapping[str, str],
    listing_fields: Sequence[str] = DEFAULT_FIELDS,
    model_version: str = "current_label",
) -> None:
    """Write Label Studio's task-import JSON: one task per pair with query_id, listing_id,
    query and the listing text built from `listing_fields`. A pair's current_label, when
    present, becomes a pre-annotation (prediction) under `model_version`."""
    require_columns(pairs, [*PAIR_KEY, "query"], "pairs")
    if "current_label" in pairs:
        require_labels(pairs["current_label"], labels, "pairs", allow_null=True)
    tasks = []
    for index, row in zip(pairs.index, pairs.to_dict("records")):
        listing = listing_text(row, listing_fields)
        if not listing:
            raise DataError(f"pairs: row {index} has no listing text in {list(listing_fields)}")
        task: dict[str, Any] = {
            "data": {
                "query_id": str(row["query_id"]),
                "listing_id": str(row["listing_id"]),
                LS_QUERY: row["query"],
                LS_LISTING: listing,
            }
        }
        current = row.get("current_label")
        if isinstance(current, str):
            result = {
                "from_name": LS_CHOICES,
                "to_name": LS_LISTING,
                "type": "choices",
                "value": {"choices": [_display(current, display)]},
            }
            task["predictions"] = [{"model_version": model_version, "result": [result]}]
        tasks.append(task)
    write_json(tasks, path)


def import_label_studio_export(
    path: str | Path,
    labels: Sequence[str],
    display: Mapping[str, str],
    guideline_version: str | None = None,
) -> ReviewImport:
    """Read Label Studio's JSON export: one judgment per submitted annotation.

    annotator_id is the Label Studio user id (`completed_by`, an int in older exports, a user
    object in newer ones), so one person keeps one id across exports and no email is stored.
    Cancelled (skipped) annotations, empty ones and tasks nobody annotated go to `skipped`.
    """
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read Label Studio export: {exc}") from exc
    if not isinstance(tasks, list):
        raise DataError(f"{path}: expected a list of tasks (Label Studio 'JSON' export)")
    lookup = label_lookup(labels, display)
    allowed = _allowed(labels, display)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for i, task in enumerate(tasks):
        try:
            rows_i, skipped_i = _read_task(i, task, lookup, allowed)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            task_id = task.get("id") if isinstance(task, dict) else None
            raise DataError(f"{path}: task {i} (id {task_id}): {reason}") from exc
        rows += rows_i
        skipped += skipped_i
    judgments = _judgments(pd.DataFrame(rows).set_index("where") if rows else pd.DataFrame())
    return _finish(judgments, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS), labels, path)


def _read_task(
    i: int, task: dict[str, Any], lookup: Mapping[str, str], allowed: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Judgment rows and skipped rows of the i-th exported task; raises on a malformed task."""
    pair = {key: str(task["data"][key]) for key in PAIR_KEY}
    if not task["annotations"]:
        return [], [{**pair, "where": f"task {i}", "reason": "no annotations"}]
    rows, skipped = [], []
    for j, annotation in enumerate(task["annotations"]):
        where = f"task {i} annotation {j}"
        if annotation.get("was_cancelled"):
            skipped.append({**pair, "where": where, "reason": "cancelled"})
            continue
        choices = [
            item["value"]["choices"]
            for item in annotation["result"]
            if item.get("from_name") == LS_CHOICES and item.get("type") == "choices"
        ]
        if not choices:
            skipped.append({**pair, "where": where, "reason": f"no {LS_CHOICES!r} choice"})
            continue
        if len(choices) != 1 or len(choices[0]) != 1:
            raise ValueError(f"annotation {j}: expected one {LS_CHOICES!r} choice, got {choices}")
        raw = str(choices[0][0])
        label = lookup.get(raw.strip().casefold())
        if label is None:
            raise ValueError(
                f"annotation {j}: unknown label {raw!r}; allowed (id or display name): {allowed}"
            )
        created = annotation.get("created_at")
        rows.append(
            {
                **pair,
                "where": where,
                "annotator_id": _annotator(annotation["completed_by"]),
                "label": label,
                "source_label": raw,
                "created_at": pd.Timestamp(created) if created else None,
            }
        )
    return rows, skipped


def _annotator(completed_by: Any) -> str:
    """Label Studio user id from `completed_by`: an int, or a user object {"id", "email"...}."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id", completed_by.get("email"))
    if isinstance(completed_by, bool) or not isinstance(completed_by, (int, str)):
        raise TypeError(f"completed_by {completed_by!r} names no user")
    return str(completed_by)


# --- shared ----------------------------------------------------------------------------------


def _judgments(frame: pd.DataFrame) -> pd.DataFrame:
    """JUDGMENT_SCHEMA columns in order (unknown ones null), source "human"; index kept for
    error messages."""
    judgments = frame.reindex(columns=JUDGMENT_SCHEMA.names)
    judgments["source"] = "human"
    judgments["confidence"] = judgments["confidence"].astype(float)
    judgments["created_at"] = pd.to_datetime(judgments["created_at"], utc=True)
    return judgments


def _finish(
    judgments: pd.DataFrame, skipped: pd.DataFrame, labels: Sequence[str], path: Path
) -> ReviewImport:
    """Check duplicates (named by row), log what was skipped, renumber from 0."""
    validate_judgments(judgments, labels, path)
    if len(skipped):
        log.warning(
            "%s: %d row(s) without a label skipped: %s",
            path,
            len(skipped),
            skipped["reason"].value_counts().to_dict(),
        )
    return ReviewImport(judgments.reset_index(drop=True), skipped.reset_index(drop=True))


def _display(label: Any, display: Mapping[str, str]) -> str:
    return "" if not isinstance(label, str) else display.get(label, label)


def _allowed(labels: Sequence[str], display: Mapping[str, str]) -> list[str]:
    return [f"{label} ({_display(label, display)})" for label in labels]

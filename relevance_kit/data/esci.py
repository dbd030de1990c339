"""The ESCI-US sample (OpenSearch's republication of Amazon's Shopping Queries Dataset)
normalised into the listing / query / judgment contracts of `relevance_kit.schemas`."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from relevance_kit.data.bad_rows import BadRows
from relevance_kit.errors import DataError


@dataclass(frozen=True)
class JudgmentContext:
    """What a raw ESCI rating needs to become a judgment row."""

    rating_to_label: dict[str, str]  # raw rating ("100") -> taxonomy label id
    rating_to_source: dict[str, str]  # raw rating -> ESCI letter
    annotator_id: str
    guideline_version: str
    judged_at: datetime


def query_id(text: str) -> str:
    """Stable id from the query text, so adding queries never renumbers old ones."""
    return "q" + hashlib.sha1(text.strip().lower().encode()).hexdigest()[:10]


def load_queries(path: Path, bad: BadRows) -> pd.DataFrame:
    doc = _read_json(path)
    rows, seen = [], set()
    for i, item in enumerate(_require(doc, "querySetQueries", path)):
        text = (item.get("queryText") or "").strip() if isinstance(item, dict) else ""
        where = f"querySetQueries[{i}]"
        if not text:
            bad.add(path.name, where, "empty query: queryText is missing or blank", item)
        elif text in seen:
            bad.add(path.name, where, f"duplicate query: {text!r}", item)
        else:
            seen.add(text)
            rows.append({"query_id": query_id(text), "text": text})
    return pd.DataFrame(rows, columns=["query_id", "text"])


def load_listings(path: Path, bad: BadRows) -> pd.DataFrame:
    rows, seen = [], set()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.add(path.name, f"line {line_no}", f"invalid JSON: {exc}", line[:200])
                continue
            listing_id = str(item.get("asin") or "").strip()
            title = (item.get("title") or "").strip()
            if not listing_id:
                bad.add(path.name, f"line {line_no}", "missing listing id: asin is empty", item)
            elif not title:
                bad.add(path.name, f"line {line_no}", f"empty title: listing {listing_id}", item)
            elif listing_id in seen:
                bad.add(path.name, f"line {line_no}", f"duplicate listing: {listing_id}", item)
            else:
                seen.add(listing_id)
                rows.append(_listing_row(listing_id, title, item))
    return pd.DataFrame(rows)


def load_judgments(
    path: Path, queries: pd.DataFrame, listings: pd.DataFrame, ctx: JudgmentContext, bad: BadRows
) -> pd.DataFrame:
    doc = _read_json(path)
    known_queries = dict(zip(queries["text"], queries["query_id"]))
    known_listings = set(listings["listing_id"])
    rows, seen = [], set()
    for i, block in enumerate(_require(doc, "judgmentRatings", path)):
        text = (block.get("query") or "").strip()
        for j, rating in enumerate(block.get("ratings", [])):
            where = f"judgmentRatings[{i}].ratings[{j}]"
            listing_id = str(rating.get("docId", "")).strip()
            raw = _rating_key(rating.get("rating"))
            qid = known_queries.get(text)
            if qid is None:
                bad.add(path.name, where, f"unknown query: {text!r} is not in the query set", rating)
            elif raw not in ctx.rating_to_label:
                allowed = sorted(ctx.rating_to_label)
                bad.add(path.name, where, f"unknown label: rating {rating.get('rating')!r}, allowed {allowed}", rating)
            elif listing_id not in known_listings:
                bad.add(path.name, where, f"missing listing: {listing_id!r} is not in the listings", rating)
            elif (qid, listing_id) in seen:
                bad.add(path.name, where, f"duplicate pair: ({text!r}, {listing_id})", rating)
            else:
                seen.add((qid, listing_id))
                rows.append(_judgment_row(qid, listing_id, raw, ctx))
    return pd.DataFrame(rows)


def _listing_row(listing_id: str, title: str, item: dict[str, Any]) -> dict[str, Any]:
    bullets = item.get("bullet_points") or ""
    image = item.get("image")
    return {
        "listing_id": listing_id,
        "title": title,
        "description": (item.get("description") or "").strip(),
        "bullet_points": [b.strip() for b in bullets.split("\n") if b.strip()],
        "attributes": {"format": "book"} if item.get("is_book") else {},
        "variations": [],
        "category": [str(c) for c in (item.get("category") or [])],
        "brand": (item.get("brand") or "").strip() or None,
        "color": (item.get("color") or "").strip() or None,
        "image_urls": [image] if image else [],
        "price": _float_or_none(item.get("price")),
        "rating": _float_or_none(item.get("rating")),
        "rating_count": int(item.get("rating_count") or 0),
        "entities": {},
    }


def _judgment_row(qid: str, listing_id: str, raw: str, ctx: JudgmentContext) -> dict[str, Any]:
    return {
        "query_id": qid,
        "listing_id": listing_id,
        "annotator_id": ctx.annotator_id,
        "label": ctx.rating_to_label[raw],
        "source_label": ctx.rating_to_source[raw],
        "rationale": None,
        "confidence": None,
        "source": "human",
        "guideline_version": ctx.guideline_version,
        "created_at": ctx.judged_at,
    }


def _rating_key(value: Any) -> str:
    """'100.000' and 100 both become '100', the form used in the config's rating map."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(number)


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON: {exc}") from None


def _require(doc: Any, key: str, path: Path) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise DataError(f"{path}: expected a JSON object with a list under {key!r}")
    return doc[key]


def utc_midnight(day: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)

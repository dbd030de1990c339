"""How a listing becomes text for lexical and embedding models (one place, so every tier
and baseline sees the same fields)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_FIELDS = ("title", "brand", "color", "category")

_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; one tokenizer for query length, overlap and coverage keeps
    every lexical feature consistent."""
    return _TOKEN.findall(text.lower())


def listing_text(listing: Mapping[str, Any], fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """Join the chosen listing fields into one string; list fields (category path) are joined
    with ' > ', missing or empty fields are skipped."""
    parts: list[str] = []
    for field in fields:
        value = listing.get(field)
        if value is None:
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, Mapping):
            text = "; ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
            items = list(value)
            text = (
                "; ".join(f"{k}: {v}" for k, v in items)
                if items and isinstance(items[0], tuple)
                else " > ".join(map(str, items))
            )
        else:
            text = str(value)
        text = text.strip()
        if text:
            parts.append(text)
    return " | ".join(parts)

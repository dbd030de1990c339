"""One raw cell -> one schema value, or a `FieldError` saying why not (the caller makes it a
bad row naming file, row and field). CSV cells arrive as text, JSON and Parquet values typed,
so each function takes both: `"12"` and `12` are the same count, but a JSON number is not a
title and `"many"` is not a count."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np


class FieldError(ValueError):
    """A value that does not fit its schema field; the message starts with the field."""


def query_id(text: str) -> str:
    """Stable id from the query text, so adding queries never renumbers old ones. Case and
    surrounding spaces are ignored: "T Towels Kitchen" and "t towels kitchen" are one query."""
    return "q" + hashlib.sha1(text.strip().lower().encode()).hexdigest()[:10]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def text(value: Any, field: str) -> str:
    """Stripped text ("" when missing); a number, list or object is not text."""
    if _missing(value):
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{field} is a {type(value).__name__} ({value!r}), expected text")
    return value.strip()


def optional_text(value: Any, field: str) -> str | None:
    return text(value, field) or None


def identifier(value: Any, field: str) -> str:
    """An id: text, or a whole number (JSON and Parquet often store ids as numbers)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return text(value, field)


def number(value: Any, field: str) -> float | None:
    """A float (None when missing or blank)."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, np.number)):
        raise FieldError(f"{field} is a {type(value).__name__} ({value!r}), expected a number")
    try:
        out = float(value)
    except ValueError:
        raise FieldError(f"{field} {value!r} is not a number") from None
    return None if math.isnan(out) else out


def count(value: Any, field: str) -> int:
    """A non-negative whole number (0 when missing: no engagement recorded)."""
    try:
        out = number(value, field)
    except FieldError:
        out = -1.0
    if out is None:
        return 0
    if not out.is_integer() or out < 0:
        raise FieldError(f"{field} {value!r} is not a whole number >= 0")
    return int(out)


def string_list(value: Any, field: str, delimiter: str | None) -> list[str]:
    """A list of texts: a JSON/Parquet list (of texts or numbers), or text split at `delimiter`
    (one item without one); blank items are dropped."""
    if _missing(value):
        return []
    if isinstance(value, str):
        parts = value.split(delimiter) if delimiter else [value]
        return [p.strip() for p in parts if p.strip()]
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [identifier(item, f"{field} item") for item in value]
        return [item for item in items if item]
    raise FieldError(f"{field} is a {type(value).__name__} ({value!r}), expected a list or text")


def attributes(value: Any, field: str, fmt: str) -> dict[str, str]:
    """name -> value from an object, a JSON object in text (`fmt` json) or `key:value|key:value`
    text (`fmt` pairs)."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str) and fmt == "json":
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise FieldError(f"{field} is not a JSON object: {exc}") from None
    if isinstance(value, list) and all(isinstance(kv, tuple) and len(kv) == 2 for kv in value):
        value = dict(value)  # a Parquet map column reads as (key, value) pairs
    if isinstance(value, dict):
        return {str(k).strip(): _attribute_value(v, field) for k, v in value.items()}
    if isinstance(value, str):
        out = {}
        for pair in (p for p in value.split("|") if p.strip()):
            key, sep, val = pair.partition(":")
            if not sep or not key.strip():
                raise FieldError(f"{field} item {pair!r} is not key:value")
            out[key.strip()] = val.strip()
        return out
    raise FieldError(
        f"{field} is a {type(value).__name__} ({value!r}), expected an object or key:value|key:value text"
    )


def _attribute_value(value: Any, field: str) -> str:
    if isinstance(value, (dict, list)):
        raise FieldError(f"{field} value {value!r} is not a single value")
    return "" if _missing(value) else str(value).strip()


def is_true(value: Any) -> bool:
    """A flag column: JSON true, a non-zero number, or text such as "true" / "yes" / "1"."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "y", "1", "t")
    return bool(value) and not _missing(value)


def rating_key(value: Any) -> str:
    """'100.000' and 100 both become '100', the form used in a categorical rating map."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return str(value).strip()
    return str(int(out)) if out.is_integer() else str(out)

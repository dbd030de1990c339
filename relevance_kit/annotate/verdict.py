"""One sampled answer -> a validated verdict {rationale, label}, or the reason it is invalid.

Structured output (JSON schema / JSON mode) is asked for where the server supports it; the
plain-text fallback still reads `label: X` answers. Nothing is guessed: an answer naming no
taxonomy label, or several, is invalid and kept with its raw text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator


class Verdict(BaseModel):
    rationale: str
    label: str

    @field_validator("label")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return value.strip().lower().replace(" ", "_").replace("-", "_")


def verdict_schema(labels: Sequence[str], max_rationale_chars: int | None = None) -> dict[str, Any]:
    """JSON schema of a verdict, rationale first so the model reasons before it labels.
    `max_rationale_chars` bounds the rationale where the server enforces it as a grammar
    (llama.cpp), so a verbose small model cannot run out of tokens before its label."""
    rationale: dict[str, Any] = {"type": "string"}
    if max_rationale_chars is not None:
        rationale["maxLength"] = max_rationale_chars
    return {
        "type": "object",
        "properties": {
            "rationale": rationale,
            "label": {"type": "string", "enum": list(labels)},
        },
        "required": ["rationale", "label"],
        "additionalProperties": False,
    }


class InvalidAnswer(ValueError):
    """The raw text holds no usable verdict; the message says why (it is sent back on re-ask)."""


def parse_verdict(text: str, labels: Sequence[str]) -> Verdict:
    """The verdict in `text`: the first JSON object with rationale and label, else a
    `label: X` line. Raises InvalidAnswer when neither names exactly one taxonomy label."""
    verdict = _from_json(text) or _from_plain_text(text)
    if verdict is None:
        raise InvalidAnswer("no JSON object with 'rationale' and 'label' and no 'label:' line")
    if verdict.label not in labels:
        raise InvalidAnswer(f"label {verdict.label!r} is not one of {list(labels)}")
    return verdict


def _from_json(text: str) -> Verdict | None:
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("label"), str):
            try:
                return Verdict(rationale=str(obj.get("rationale") or ""), label=obj["label"])
            except ValidationError:
                continue
    return None


_LABEL_LINE = re.compile(
    r"^\W*label\W*[:=]\s*\W*(?P<label>[A-Za-z][A-Za-z _-]*?)\W*$", re.IGNORECASE | re.MULTILINE
)


def _from_plain_text(text: str) -> Verdict | None:
    found = _LABEL_LINE.findall(text)
    if len(found) != 1:
        return None
    rationale = _LABEL_LINE.sub("", text).strip()
    return Verdict(rationale=rationale, label=found[0])

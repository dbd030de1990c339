"""Prompts from config: one rendering of query, listing and taxonomy for every LLM tier
(the annotator's chat messages and the teacher's SFT inputs), so they judge the same text.

Listing text is untrusted seller input: it is placed between <listing> tags and any tag
that could close that block early is neutralised, so a listing cannot pose as instructions.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relevance_kit.config import GuidelineVersion, PromptConfig, TaxonomyConfig

_TAG = re.compile(r"<\s*/?\s*listing\s*>", re.IGNORECASE)


def sanitize(text: str) -> str:
    """Neutralise delimiter look-alikes in untrusted text (`</listing>` -> `[/listing]`)."""
    return _TAG.sub(lambda m: m.group(0).replace("<", "[").replace(">", "]"), text)


def render_listing(listing: Mapping[str, Any], max_chars: int | None = 1500) -> str:
    """Every listing feature that is present, one labelled line each, longest fields last so
    truncation (`max_chars`) cuts the description first."""
    lines: list[str] = []

    def add(name: str, value: Any) -> None:
        text = _as_text(value)
        if text:
            lines.append(f"{name}: {sanitize(text)}")

    add("Title", listing.get("title"))
    add("Brand", listing.get("brand"))
    add("Color", listing.get("color"))
    add("Category", " > ".join(_as_list(listing.get("category"))))
    add("Attributes", "; ".join(f"{k}: {v}" for k, v in _as_pairs(listing.get("attributes"))))
    add("Variations", "; ".join(_as_list(listing.get("variations"))))
    add("Entities", "; ".join(f"{k}: {v}" for k, v in _as_pairs(listing.get("entities"))))
    add("Highlights", " / ".join(_as_list(listing.get("bullet_points"))))
    add("Description", listing.get("description"))
    text = "\n".join(lines)
    return text if max_chars is None or len(text) <= max_chars else text[: max_chars - 1] + "…"


def label_definitions(taxonomy: TaxonomyConfig) -> str:
    return "\n".join(
        f"- {label.id} ({label.display}): {label.definition}" for label in taxonomy.labels
    )


def system_prompt(
    prompt: PromptConfig, taxonomy: TaxonomyConfig, guidelines: GuidelineVersion
) -> str:
    return prompt.system.format(
        guidelines=f"Guidelines (version {guidelines.version}): {guidelines.text}",
        label_definitions=label_definitions(taxonomy),
        label_ids=", ".join(taxonomy.ids),
    )


def user_prompt(
    prompt: PromptConfig, query: str, listing: Mapping[str, Any], max_chars: int | None = 1500
) -> str:
    return prompt.user.format(query=sanitize(query), listing=render_listing(listing, max_chars))


@dataclass(frozen=True)
class Shot:
    """A few-shot example: a judged pair and the reasoning the model should imitate."""

    query: str
    listing: Mapping[str, Any]
    label: str
    rationale: str


def answer_json(rationale: str, label: str) -> str:
    """The answer format the system prompt asks for (few-shot replies show it)."""
    return json.dumps({"rationale": rationale, "label": label}, ensure_ascii=False)


def chat_messages(
    prompt: PromptConfig,
    taxonomy: TaxonomyConfig,
    guidelines: GuidelineVersion,
    query: str,
    listing: Mapping[str, Any],
    shots: Sequence[Shot] = (),
    images: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The annotator's chat: system prompt, each shot as a user turn and its JSON answer,
    then the pair to judge; `images` (URLs or local files) become image parts of that turn."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(prompt, taxonomy, guidelines)}
    ]
    for shot in shots:
        messages.append(
            {
                "role": "user",
                "content": user_prompt(prompt, shot.query, shot.listing, prompt.shot_listing_chars),
            }
        )
        messages.append({"role": "assistant", "content": answer_json(shot.rationale, shot.label)})
    text = user_prompt(prompt, query, listing, prompt.max_listing_chars)
    content: str | list[dict[str, Any]] = (
        [
            {"type": "text", "text": text},
            *({"type": "image_url", "image_url": {"url": image_url(i)}} for i in images),
        ]
        if images
        else text
    )
    messages.append({"role": "user", "content": content})
    return messages


def image_url(image: str) -> str:
    """http(s) and data URLs pass through (the model server fetches them); a local file
    becomes a base64 data URL, since a remote API cannot read this machine's disk."""
    if re.match(r"^(https?|data):", image):
        return image
    path = Path(image)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def entity_prompt(prompt: PromptConfig, query: str, listing: Mapping[str, Any]) -> str:
    """The request that extracts query and listing entities (product type, brand, ...)."""
    return prompt.entity_extraction.format(
        query=sanitize(query), listing=render_listing(listing, prompt.max_listing_chars)
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v).strip() for v in list(value) if str(v).strip()]


def _as_pairs(value: Any) -> list[tuple[str, str]]:
    """Map columns come back from parquet as lists of (key, value) tuples; accept dicts too."""
    if value is None:
        return []
    items = value.items() if isinstance(value, Mapping) else list(value)
    return [(str(k), str(v)) for k, v in items]

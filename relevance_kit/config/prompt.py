"""The `prompt` group (conf/prompt/): the annotator's prompt templates."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from relevance_kit.config.base import Strict


class PromptConfig(Strict):
    name: str
    n_shots: Annotated[int, Field(ge=0)]
    rationale: bool
    system: str
    user: str
    max_listing_chars: Annotated[int, Field(gt=0)]
    shot_listing_chars: Annotated[int, Field(gt=0)]  # few-shot listings: shorter
    # filled with {label_display} and {definition}
    shot_rationale: str
    reask: str
    entity_extraction: str

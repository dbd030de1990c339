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
    max_listing_chars: Annotated[int, Field(gt=0)] = 1500
    shot_listing_chars: Annotated[int, Field(gt=0)] = 400  # few-shot listings: shorter
    # Rationale of a few-shot example drawn from the annotate pool (humans gave a label, not
    # a reason): filled with {label_display} and {definition}.
    shot_rationale: str = "A human annotator judged it {label_display}: {definition}"
    reask: str = (
        "That answer could not be read: {error}. Reply with only the JSON object "
        '{{"rationale": "...", "label": "<one of {label_ids}>"}}.'
    )
    entity_extraction: str = (
        "List the product type, brand, colour, material, size and recipient stated by the query "
        'and by the listing, as JSON {{"query": {{...}}, "listing": {{...}}}}.\n'
        "Query: {query}\n<listing>\n{listing}\n</listing>"
    )

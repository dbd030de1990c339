"""The `golden` group (conf/golden/): the human annotation files and how they aggregate."""

from __future__ import annotations

from typing import Literal

from relevance_kit.config.base import Strict


class GoldenConfig(Strict):
    name: str
    annotation_files: list[str]
    tie_break: Literal["most_severe", "least_severe", "review"]
    review_formats: list[Literal["csv", "label_studio"]]

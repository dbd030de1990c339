"""The golden stage's logic: gather every human judgment of the golden pairs (the dataset's
own plus filled-in review files), aggregate, measure agreement, and queue what stays
unresolved for human review."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.golden.aggregate import aggregate_golden
from relevance_kit.golden.agreement import agreement_report, recorded_disagreement
from relevance_kit.golden.review_files import (
    ReviewImport,
    import_label_studio_export,
    import_review_csv,
)
from relevance_kit.schemas import PAIR_KEY


@dataclass
class GoldenSet:
    golden: pd.DataFrame  # resolved pairs: query_id, listing_id, label, n_annotators, ...
    review: pd.DataFrame  # unresolved pairs, with query text and listing fields for reviewers
    report: dict[str, Any]


def read_annotation_file(
    path: str | Path, labels: list[str], display: dict[str, str]
) -> ReviewImport:
    """A filled-in review file: CSV (ours) or a Label Studio JSON export, by extension."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return import_review_csv(path, labels, display)
    if path.suffix.lower() == ".json":
        return import_label_studio_export(path, labels, display)
    raise DataError(
        f"{path}: annotation files must be .csv (review sheet) or .json (Label Studio export)"
    )


def review_context(
    pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame
) -> pd.DataFrame:
    """Query text and the listing fields a reviewer needs, per pair of `pairs`."""
    listing_fields = listings[["listing_id", "title", "brand", "color", "category"]]
    return pairs.merge(queries.rename(columns={"text": "query"}), on="query_id").merge(
        listing_fields, on="listing_id"
    )


def build_golden(
    pairs: pd.DataFrame,
    judgments: pd.DataFrame,
    imports: dict[str, ReviewImport],
    labels: list[str],
    tie_break: str,
    context: pd.DataFrame,
) -> GoldenSet:
    """Aggregate the human judgments of `pairs`; `imports` are extra annotation files by name;
    `context` gives query text and listing fields per pair for the review queue."""
    human = judgments[judgments["source"] == "human"]
    extra = [imp.judgments.assign(source_file=name) for name, imp in imports.items()]
    all_judgments = pd.concat([human.assign(source_file="dataset"), *extra], ignore_index=True)
    all_judgments = all_judgments.merge(pairs[PAIR_KEY], on=PAIR_KEY, how="inner")
    unjudged = pairs[PAIR_KEY].merge(
        all_judgments[PAIR_KEY].drop_duplicates(), on=PAIR_KEY, how="left", indicator=True
    )
    unjudged = unjudged[unjudged["_merge"] == "left_only"]
    aggregated = aggregate_golden(all_judgments, labels, tie_break)
    resolved = aggregated[aggregated["label"].notna()].reset_index(drop=True)
    review = aggregated[aggregated["label"].isna()].merge(context, on=PAIR_KEY, how="left")
    golden_human = human.merge(
        pairs[PAIR_KEY], on=PAIR_KEY
    )  # the dataset's own, for its recorded disagreement
    report = {
        "golden_pairs": len(resolved),
        "golden_queries": int(resolved["query_id"].nunique()),
        "labels": {k: int(v) for k, v in resolved["label"].value_counts().sort_index().items()},
        "resolution": {
            k: int(v) for k, v in aggregated["resolution"].value_counts().sort_index().items()
        },
        "to_review": len(review),
        "pairs_without_judgment": len(unjudged),
        "skipped_in_files": {name: len(imp.skipped) for name, imp in imports.items()},
        "agreement": agreement_report(all_judgments, labels) | recorded_disagreement(golden_human),
    }
    return GoldenSet(resolved, review.reset_index(drop=True), report)

"""Query-level strata (for splits) and pair-level features (for stratified and targeted samples).

The same features drive both, so a golden set stratified on them can be compared stratum by
stratum with the pools the annotator and teacher see.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from relevance_kit.lexical import CatalogBM25
from relevance_kit.sampling._validate import require_known, require_unique
from relevance_kit.schemas import PAIR_KEY, require_columns
from relevance_kit.text import listing_text, tokens

UNKNOWN = "unknown"  # listing without a category path
OTHER = "other"  # dominant categories too rare to be their own query stratum
LENGTH_BUCKETS = ((2, "1-2"), (4, "3-4"))  # (max tokens, bucket); longer queries are LONG_BUCKET
LONG_BUCKET = "5+"
QUERY_STRATA = ("query_length_bucket", "dominant_category")


def length_bucket(text: str) -> str:
    n = len(tokens(text))
    return next((bucket for limit, bucket in LENGTH_BUCKETS if n <= limit), LONG_BUCKET)


def top_category(path: Sequence[str] | None) -> str:
    """Root of a category path (stored root first); UNKNOWN when the path is missing or empty."""
    if path is None or len(path) == 0:
        return UNKNOWN
    return str(path[0]).strip() or UNKNOWN


def query_strata(
    queries: pd.DataFrame,
    judgments: pd.DataFrame,
    listings: pd.DataFrame,
    min_category_queries: int = 5,
) -> pd.DataFrame:
    """One row per query: its length bucket and dominant top-level category (the most common
    root among its judged listings; ties by name). Dominant categories held by fewer than
    `min_category_queries` queries become OTHER, so no stratum is too small to split."""
    require_columns(queries, ["query_id", "text"], "queries")
    require_columns(judgments, PAIR_KEY, "judgments")
    require_columns(listings, ["listing_id", "category"], "listings")
    require_unique(queries, ["query_id"], "queries")
    require_unique(listings, ["listing_id"], "listings")
    require_known(judgments["query_id"], queries["query_id"], "judgments.query_id")
    require_known(judgments["listing_id"], listings["listing_id"], "judgments.listing_id")

    roots = listings.set_index("listing_id")["category"].map(top_category)
    judged = judgments[PAIR_KEY].drop_duplicates()
    dominant = (
        judged.assign(root=judged["listing_id"].map(roots))
        .groupby(["query_id", "root"])
        .size()
        .reset_index(name="n")
        .sort_values(["query_id", "n", "root"], ascending=[True, False, True])
        .drop_duplicates("query_id")
        .set_index("query_id")["root"]
    )
    table = queries[["query_id", "text"]].sort_values("query_id", ignore_index=True)
    table["query_length_bucket"] = table["text"].map(length_bucket)
    table["dominant_category"] = table["query_id"].map(dominant).fillna(UNKNOWN)
    held_by = table["dominant_category"].map(table["dominant_category"].value_counts())
    table.loc[held_by < min_category_queries, "dominant_category"] = OTHER
    return table.drop(columns="text")


def pair_features(
    pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame, bm25: CatalogBM25
) -> pd.DataFrame:
    """`pairs` (any extra columns, e.g. label, kept) plus the columns strata and rules use:
    query_length_bucket, category (listing root), category_frequency (its share of the
    catalogue), lexical_overlap (share of query tokens in the listing text) and bm25_score."""
    require_columns(pairs, PAIR_KEY, "pairs")
    require_columns(queries, ["query_id", "text"], "queries")
    require_columns(listings, ["listing_id", "category"], "listings")
    require_unique(pairs, PAIR_KEY, "pairs")
    require_unique(listings, ["listing_id"], "listings")
    require_known(pairs["query_id"], queries["query_id"], "pairs.query_id")
    require_known(pairs["listing_id"], listings["listing_id"], "pairs.listing_id")

    query_text = dict(zip(queries["query_id"], queries["text"]))
    catalogue = listings.set_index("listing_id", drop=False)
    roots = catalogue["category"].map(top_category)
    paired = catalogue.loc[pairs["listing_id"].unique()]
    listing_tokens = {
        row["listing_id"]: set(tokens(listing_text(row))) for row in paired.to_dict("records")
    }

    out = pairs.reset_index(drop=True)
    out["query_length_bucket"] = out["query_id"].map(query_text).map(length_bucket)
    out["category"] = out["listing_id"].map(roots)
    out["category_frequency"] = out["category"].map(roots.value_counts(normalize=True))
    out["lexical_overlap"] = [
        _overlap(query_text[q], listing_tokens[lid])
        for q, lid in zip(out["query_id"], out["listing_id"])
    ]
    out["bm25_score"] = bm25.pair_scores(out, query_text)
    return out


def _overlap(query: str, listing_tokens: set[str]) -> float:
    words = set(tokens(query))
    return len(words & listing_tokens) / len(words) if words else 0.0

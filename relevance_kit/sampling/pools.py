"""The unlabeled pool: BM25 candidates from the whole catalogue, as live search would retrieve.

Judged pairs are a biased slice (someone chose what to judge); the teacher and student must
also see the listings retrieval actually returns. No label column exists here, so no human
label can leak into the pool the teacher scores.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from relevance_kit.errors import ConfigError
from relevance_kit.lexical import CatalogBM25
from relevance_kit.sampling._validate import require_known, require_unique
from relevance_kit.schemas import require_columns

CANDIDATE_COLUMNS = ["query_id", "listing_id", "bm25_score", "rank"]


def retrieve_candidates(
    query_ids: Iterable[str], queries: pd.DataFrame, bm25: CatalogBM25, top_k: int
) -> pd.DataFrame:
    """The `top_k` BM25 listings per query (fewer when fewer match at all), rank 1 = best."""
    if top_k < 1:
        raise ConfigError(f"retrieve_candidates: top_k must be >= 1, got {top_k}")
    require_columns(queries, ["query_id", "text"], "queries")
    require_unique(queries, ["query_id"], "queries")
    wanted = list(dict.fromkeys(query_ids))
    require_known(wanted, queries["query_id"], "retrieve_candidates query_ids")
    text = dict(zip(queries["query_id"], queries["text"]))
    rows = [
        (qid, listing_id, score, rank)
        for qid in wanted
        for rank, (listing_id, score) in enumerate(bm25.top_k(text[qid], top_k), start=1)
    ]
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS).astype(
        {"rank": "int64", "bm25_score": "float64"}
    )

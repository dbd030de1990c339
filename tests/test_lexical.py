"""BM25 on queries that tokenize to nothing: real Home Depot search terms such as `8 x 1/2`,
`4 x 6`, `or` and `To` (single characters and stopwords) are ordinary queries of a hardware
store. They score zero lexical evidence everywhere instead of crashing bm25s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from relevance_kit.lexical import CatalogBM25
from relevance_kit.sampling import pair_features, retrieve_candidates

EMPTY_QUERIES = ["8 x 1/2", "4 x 6", "or", "To"]
LISTINGS = pd.DataFrame(
    {
        "listing_id": ["a", "b", "c"],
        "title": [
            "4 in. x 6 in. Steel Mending Plate",
            "8 x 1/2 in. Lag Screw",
            "Galvanized Angle Bracket",
        ],
        "brand": [None, "Everbilt", None],
        "color": [None, None, None],
        "category": [[], [], []],
    }
)


@pytest.fixture(scope="module")
def bm25() -> CatalogBM25:
    return CatalogBM25(LISTINGS)


@pytest.mark.parametrize("query", EMPTY_QUERIES)
def test_query_without_tokens_scores_zero_everywhere(bm25: CatalogBM25, query: str) -> None:
    scores = bm25.scores(query)
    assert scores.shape == (3,) and not scores.any()
    assert bm25.top_k(query, 2) == []  # nothing matches lexically: no candidate retrieved


def test_ordinary_query_still_scores(bm25: CatalogBM25) -> None:
    scores = bm25.scores("angle bracket")
    assert scores.argmax() == 2 and scores[2] > 0


def test_pools_and_features_take_the_empty_queries(bm25: CatalogBM25) -> None:
    queries = pd.DataFrame({"query_id": [f"q{i}" for i in range(4)], "text": EMPTY_QUERIES})
    pairs = pd.DataFrame({"query_id": ["q0", "q1", "q2", "q3"], "listing_id": ["b", "a", "c", "a"]})
    features = pair_features(pairs, queries, LISTINGS, bm25)
    assert np.all(features["bm25_score"] == 0.0)
    assert np.allclose(
        bm25.pair_scores(pairs, dict(zip(queries["query_id"], queries["text"]))), 0.0
    )
    assert retrieve_candidates(queries["query_id"], queries, bm25, top_k=5).empty

"""BM25 over the listing catalogue (bm25s): pair scores for the lexical baseline and
top-k retrieval for realistic unlabeled candidate pools."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import pandas as pd

from relevance_kit.text import DEFAULT_FIELDS, listing_text, tokens


class CatalogBM25:
    """A BM25 index over every listing; scores are comparable across pairs of the same catalogue."""

    def __init__(self, listings: pd.DataFrame, fields: Sequence[str] = DEFAULT_FIELDS) -> None:
        self.listing_ids = listings["listing_id"].astype(str).tolist()
        self._row = {lid: i for i, lid in enumerate(self.listing_ids)}
        corpus = [listing_text(row, fields) for row in listings.to_dict("records")]
        self._retriever = bm25s.BM25()
        self._retriever.index(
            bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
        )

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of `query` against every listing, in catalogue order. A query with no
        indexable token (`4 x 6`, `8 x 1/2`, `To`: single characters and stopwords) scores
        zero everywhere: no lexical evidence is a fact about it, not an error (bm25s itself
        fails on an empty token list)."""
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
        if not tokens:
            return np.zeros(len(self.listing_ids), dtype=np.float64)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float64)

    def pair_scores(self, pairs: pd.DataFrame, query_text: dict[str, str]) -> np.ndarray:
        """Score each (query_id, listing_id) row of `pairs`; queries are scored once each."""
        out = np.zeros(len(pairs), dtype=np.float64)
        for qid, idx in pairs.groupby("query_id").indices.items():
            all_scores = self.scores(query_text[qid])
            rows = [self._row[lid] for lid in pairs["listing_id"].iloc[idx]]
            out[idx] = all_scores[rows]
        return out

    def top_k(self, query: str, k: int) -> list[tuple[str, float]]:
        """The k best listings for `query` (ids and scores), best first; zero scores dropped."""
        all_scores = self.scores(query)
        k = min(k, len(all_scores))
        best = np.argpartition(-all_scores, k - 1)[:k]
        best = best[np.argsort(-all_scores[best], kind="stable")]
        return [(self.listing_ids[i], float(all_scores[i])) for i in best if all_scores[i] > 0]


LEXICAL_FEATURES = ("bm25", "query_overlap", "title_coverage", "query_length")


def lexical_features(
    pairs: pd.DataFrame,
    query_text: dict[str, str],
    listings: pd.DataFrame,
    index: CatalogBM25,
    fields: Sequence[str] = DEFAULT_FIELDS,
) -> pd.DataFrame:
    """The classic learning-to-rank pair features, one row per row of `pairs`:

    | column | what |
    | --- | --- |
    | bm25 | BM25 of the query against the listing text (catalogue statistics) |
    | query_overlap | share of the query's distinct tokens found in the listing text |
    | title_coverage | share of the listing title's distinct tokens found in the query |
    | query_length | number of query tokens |
    """
    rows = listings.set_index("listing_id").loc[pairs["listing_id"].unique()]
    text_tokens = {
        lid: set(tokens(listing_text({"listing_id": lid, **row}, fields)))
        for lid, row in rows.iterrows()
    }
    title_tokens = {lid: set(tokens(str(title))) for lid, title in rows["title"].items()}
    query_tokens = [set(tokens(query_text[q])) for q in pairs["query_id"]]
    listing_ids = pairs["listing_id"].tolist()
    return pd.DataFrame({
        "bm25": index.pair_scores(pairs, query_text),
        "query_overlap": [len(q & text_tokens[l]) / len(q) if q else 0.0 for q, l in zip(query_tokens, listing_ids)],
        "title_coverage": [len(q & title_tokens[l]) / len(title_tokens[l]) if title_tokens[l] else 0.0 for q, l in zip(query_tokens, listing_ids)],
        "query_length": [float(len(tokens(query_text[q]))) for q in pairs["query_id"]],
    })  # fmt: skip

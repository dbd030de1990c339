"""BM25 over the listing catalogue (bm25s): pair scores for the lexical baseline and
top-k retrieval for realistic unlabeled candidate pools."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import pandas as pd

from relevance_kit.text import DEFAULT_FIELDS, listing_text


class CatalogBM25:
    """A BM25 index over every listing; scores are comparable across pairs of the same catalogue."""

    def __init__(self, listings: pd.DataFrame, fields: Sequence[str] = DEFAULT_FIELDS) -> None:
        self.listing_ids = listings["listing_id"].astype(str).tolist()
        self._row = {lid: i for i, lid in enumerate(self.listing_ids)}
        corpus = [listing_text(row, fields) for row in listings.to_dict("records")]
        self._retriever = bm25s.BM25()
        self._retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

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

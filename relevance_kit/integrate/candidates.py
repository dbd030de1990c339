"""Search candidates and the popularity-leaning baseline ranker.

For each held-out query the candidates are every judged listing plus the BM25 top-N listings
that nobody judged (so a ranker can surface unjudged listings, as live search does). Each
candidate carries ranking features from the catalogue: BM25, log1p(rating_count), rating,
log price, and its human label where one exists.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from relevance_kit.lexical import CatalogBM25
from relevance_kit.schemas import PAIR_KEY, require_columns

BASE_FEATURES = ["bm25", "log_popularity", "rating", "log_price"]


def build_candidates(
    judged: pd.DataFrame, queries: pd.DataFrame, index: CatalogBM25, retrieve_k: int
) -> pd.DataFrame:
    """Judged pairs (query_id, listing_id, label) plus the BM25 top `retrieve_k` unjudged
    listings of each of their queries (label null)."""
    require_columns(judged, [*PAIR_KEY, "label"], "judged pairs")
    text = dict(zip(queries["query_id"], queries["text"]))
    retrieved = [
        {"query_id": qid, "listing_id": lid}
        for qid in judged["query_id"].unique()
        for lid, _ in index.top_k(text[qid], retrieve_k)
    ]
    extra = pd.DataFrame(retrieved, columns=PAIR_KEY)
    extra = extra.merge(judged[PAIR_KEY], how="left", indicator=True)
    extra = extra.loc[extra["_merge"] == "left_only", PAIR_KEY]
    return pd.concat([judged[[*PAIR_KEY, "label"]], extra], ignore_index=True)


def add_features(
    pairs: pd.DataFrame, listings: pd.DataFrame, queries: pd.DataFrame, index: CatalogBM25
) -> pd.DataFrame:
    """The pairs with BASE_FEATURES (catalogue popularity, rating, price and BM25)."""
    text = dict(zip(queries["query_id"], queries["text"]))
    catalogue = listings.set_index("listing_id").loc[pairs["listing_id"]]
    out = pairs.reset_index(drop=True).copy()
    out["bm25"] = index.pair_scores(out, text)
    out["log_popularity"] = np.log1p(catalogue["rating_count"].fillna(0).to_numpy(dtype=np.float64))
    out["rating"] = catalogue["rating"].to_numpy(dtype=np.float64)
    out["log_price"] = np.log1p(catalogue["price"].to_numpy(dtype=np.float64))
    return out


def popularity_baseline(
    candidates: pd.DataFrame, bm25_weight: float, popularity_weight: float
) -> np.ndarray:
    """The baseline score: BM25 and log1p(rating_count), each standardised within its query,
    blended with the configured weights (engagement-trained search leans on popularity)."""
    grouped = candidates.groupby("query_id")
    return bm25_weight * _zscore(candidates["bm25"], grouped) + popularity_weight * _zscore(
        candidates["log_popularity"], grouped
    )


def _zscore(values: pd.Series, grouped: pd.core.groupby.DataFrameGroupBy) -> np.ndarray:
    mean = grouped[values.name].transform("mean")
    std = grouped[values.name].transform("std").fillna(0.0)
    return ((values - mean) / std.where(std > 0, 1.0)).to_numpy(dtype=np.float64)

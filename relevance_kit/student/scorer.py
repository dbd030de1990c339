"""RelevanceScorer: probabilities for 1 query x N listings, in-process.

Per request: the query's vector u (from an LRU cache of recent queries, else tokenizer +
ONNX query encoder), one `np.take` of the candidates' vectors from the index snapshot into a
reused buffer, then the head as NumPy products with the first layer folded per query
(`serving_head.ServingHead`). Listings not yet indexed can be given as text: the ONNX
listing encoder embeds them on the fly. The index must come from the same
model version as the encoder; `swap_index` replaces it atomically while requests run.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from relevance_kit.config import saved_head
from relevance_kit.errors import DataError
from relevance_kit.student.export import (
    HEAD,
    INDEX,
    MANIFEST,
    QUERY_ENCODER,
    TOKENIZER,
    listing_encoder_file,
)
from relevance_kit.student.index import ListingIndex
from relevance_kit.student.onnx_tower import OnnxTower
from relevance_kit.student.serving_head import ServingHead
from relevance_kit.student.towers import RelevanceHead


def load_torch_head(export_dir: Path, manifest: dict) -> RelevanceHead:
    """The exported head as the torch module it was trained as, in eval mode."""
    head = RelevanceHead(manifest["dim"], len(manifest["labels"]), saved_head(manifest["head"]))
    head.load_state_dict(torch.load(export_dir / HEAD, map_location="cpu", weights_only=True))
    return head.eval()


def load_head(export_dir: Path, manifest: dict) -> ServingHead:
    return ServingHead.from_head(load_torch_head(export_dir, manifest))


def read_manifest(export_dir: Path) -> dict:
    path = export_dir / MANIFEST
    if not path.exists():
        raise DataError(
            f"{export_dir}: not a student export (no {MANIFEST}); run `dvc repro export_student`"
        )
    return json.loads(path.read_text())


def listing_tower(export_dir: Path, manifest: dict, threads: int) -> OnnxTower:
    """The fp32 listing encoder the index was built with (it embeds new listings)."""
    return OnnxTower(
        export_dir / listing_encoder_file(manifest, export_dir),
        export_dir / TOKENIZER,
        manifest["listing_max_length"],
        threads,
    )


class RelevanceScorer:
    """`score(query, listing_ids)` -> (n, K) probabilities, columns in `labels` order."""

    def __init__(
        self,
        manifest: dict,
        query_tower: OnnxTower,
        head: ServingHead,
        index: ListingIndex,
        index_path: Path,
        listings: OnnxTower | None = None,
        query_cache: int = 0,
    ) -> None:
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.labels: list[str] = list(manifest["labels"])
        self.query_tower = query_tower
        self.head = head
        self.index = index
        self.index_path = index_path
        self.listings = listings
        self._swap_lock = threading.Lock()
        self.query_vector = (
            functools.lru_cache(maxsize=query_cache)(self.encode_query)
            if query_cache
            else self.encode_query
        )

    @classmethod
    def load(
        cls,
        export_dir: str | Path,
        variant: Literal["fp32", "int8"] | None = None,
        index_path: str | Path | None = None,
        threads: int = 1,
        query_cache: int = 0,
        text_listings: bool = False,
    ) -> RelevanceScorer:
        """Load an export folder; `variant` overrides the manifest's served query encoder,
        `index_path` another index file (refused unless from the same model version),
        `query_cache` keeps that many recent query vectors, `text_listings` loads the
        listing encoder so listings can be given as text."""
        export_dir = Path(export_dir)
        manifest = read_manifest(export_dir)
        query_tower = OnnxTower(
            export_dir / QUERY_ENCODER[variant or manifest["serve"]],
            export_dir / TOKENIZER,
            manifest["query_max_length"],
            threads,
        )
        index_path = Path(index_path or export_dir / INDEX)
        index = ListingIndex.load(index_path, manifest["name"], manifest["version"])
        listings = listing_tower(export_dir, manifest, threads) if text_listings else None
        head = load_head(export_dir, manifest)
        return cls(manifest, query_tower, head, index, index_path, listings, query_cache)

    @property
    def listing_ids(self) -> np.ndarray:
        return self.index.listing_ids

    def swap_index(self, path: str | Path | None = None) -> tuple[int, int]:
        """Load an index (default: the one loaded at start, re-read) and swap it in whole;
        requests in flight finish on the snapshot they started with. Returns (before, after)."""
        with self._swap_lock:
            path = Path(path or self.index_path)
            fresh = ListingIndex.load(path, self.name, self.version)
            before, self.index = len(self.index), fresh
            return before, len(fresh)

    def encode_query(self, query: str) -> np.ndarray:
        """u for one query (a single query needs no padding)."""
        u = self.query_tower.run(self.query_tower.tokens([query]))[0]
        u.flags.writeable = False
        return u

    def encode_listings(self, texts: Sequence[str]) -> np.ndarray:
        """v for listings given as text, as the index would hold it."""
        if self.listings is None:
            raise DataError("this scorer was loaded without its listing encoder (text_listings)")
        return self.listings.encode(texts)

    def score(
        self, query: str, listing_ids: Sequence[str], listing_texts: Sequence[str] = ()
    ) -> np.ndarray:
        """Probabilities of shape (len(listing_ids) + len(listing_texts), len(labels)), rows
        in that order; rows sum to 1. Unknown ids raise `index.UnknownListings`."""
        if not query.strip():
            raise DataError("query is empty")
        index = self.index  # one snapshot for the whole request
        rows = index.rows(listing_ids)  # raises on unknown ids, so every row is in range
        u = self.query_vector(query)
        v = self.head.candidates(len(rows) + len(listing_texts))
        np.take(index.vectors, rows, axis=0, out=v[: len(rows)], mode="clip")
        if listing_texts:
            v[len(rows) :] = self.encode_listings(listing_texts)
        return self.head.probabilities(u, v)

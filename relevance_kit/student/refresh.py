"""Incremental index refresh (`relevance-kit index`): embed only the listings that are new
or whose text changed since the index was built, drop the ones no longer in the catalogue,
keep every other row as it is. The index and the export must be the same model version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from relevance_kit.student.data import catalogue_texts
from relevance_kit.student.export import INDEX, file_hashes, write_manifest
from relevance_kit.student.index import ListingIndex, content_hash
from relevance_kit.student.scorer import listing_tower, load_head, read_manifest


def refresh_index(
    export_dir: str | Path,
    listings: pd.DataFrame,
    output: str | Path | None = None,
    batch_size: int = 128,
    threads: int = 1,
) -> dict:
    """Write the refreshed index to `output` (default: the export's own index, replaced
    atomically, manifest updated) and return what changed."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    old = ListingIndex.load(export_dir / INDEX, manifest["name"], manifest["version"])
    texts = catalogue_texts(listings, manifest["listing_fields"])
    ids = list(texts)
    hashes = np.asarray([content_hash(texts[i]) for i in ids], dtype=str)
    old_rows = np.asarray([old.row.get(i, -1) for i in ids], dtype=np.intp)
    kept = old_rows >= 0
    kept[kept] = old.content_hashes[old_rows[kept]] == hashes[kept]
    embed = np.flatnonzero(~kept)
    vectors = np.zeros((len(ids), old.vectors.shape[1]), np.float32)
    parts = np.zeros((len(ids), old.listing_parts.shape[1]), np.float32)
    vectors[kept], parts[kept] = old.vectors[old_rows[kept]], old.listing_parts[old_rows[kept]]
    if len(embed):
        tower = listing_tower(export_dir, manifest, threads)
        v = tower.encode([texts[ids[i]] for i in embed], batch_size)
        vectors[embed], parts[embed] = v, load_head(export_dir, manifest).listing_part(v)
    fresh = ListingIndex(
        manifest["name"], manifest["version"], np.asarray(ids, dtype=str), vectors, parts, hashes
    )
    target = Path(output or export_dir / INDEX)
    fresh.save(target)
    if target.resolve() == (export_dir / INDEX).resolve():
        write_manifest(
            {**manifest, "n_listings": len(ids), "files": file_hashes(export_dir)}, export_dir
        )
    new = int((old_rows < 0).sum())
    return {
        "index": str(target),
        "version": manifest["version"],
        "listings": len(ids),
        "new": new,
        "changed": len(embed) - new,
        "removed": len(old) - int((old_rows >= 0).sum()),
        "unchanged": int(kept.sum()),
    }

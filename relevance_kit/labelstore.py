"""The label store: every (model version, query text, listing content hash) a tier has scored,
with its label probabilities, so no pair is scored twice across stages and days.

Choice: one SQLite file (Python's own sqlite3, nothing to install). A primary key on the
three-part key makes lookups an index join and writes idempotent (INSERT OR IGNORE), each
batch is one transaction (a crash leaves the store as it was before the batch), and several
processes can read and append to one file. A changed listing text changes its content hash,
and a retrained teacher changes the model version: both are new keys, never stale hits.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    model_version TEXT NOT NULL,
    query TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    labels TEXT NOT NULL,   -- JSON list of the taxonomy label ids, the order of probs
    probs TEXT NOT NULL,    -- JSON list of probabilities
    PRIMARY KEY (model_version, query, content_hash)
) WITHOUT ROWID
"""

Key = tuple[str, str]  # (query text, listing content hash)


def content_hash(listing: Mapping[str, Any]) -> str:
    """sha256 of the listing record as the scorer sees it (every field but its id)."""
    record = {k: _plain(v) for k, v in listing.items() if k != "listing_id"}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def folder_version(name: str, folder: Path, extra: Any = None) -> str:
    """A model version: `name@` + sha256 of every file of the folder (path and bytes) and of
    `extra` (e.g. the settings that shape the prompt), so retraining gives a new version."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"{name}@{digest.hexdigest()[:16]}"


class LabelStore:
    """Probabilities by (model version, query, content hash) in a SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        with self._connect() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed on success, rolled back on an error, then closed."""
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            with db:
                yield db
        finally:
            db.close()

    def get(
        self, model_version: str, labels: Sequence[str], keys: Iterable[Key]
    ) -> dict[Key, np.ndarray]:
        """The stored probabilities of the keys found (in `labels` order); counts hits/misses."""
        keys = list(dict.fromkeys(keys))
        found: dict[Key, np.ndarray] = {}
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE wanted (query TEXT, content_hash TEXT)")
            db.executemany("INSERT INTO wanted VALUES (?, ?)", keys)
            rows = db.execute(
                "SELECT w.query, w.content_hash, l.labels, l.probs FROM wanted w JOIN labels l "
                "ON l.model_version = ? AND l.query = w.query AND l.content_hash = w.content_hash",
                (model_version,),
            ).fetchall()
        for query, digest, stored_labels, probs in rows:
            order = json.loads(stored_labels)
            values = dict(zip(order, json.loads(probs)))
            if sorted(order) == sorted(labels):
                found[(query, digest)] = np.array([values[label] for label in labels])
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put(
        self, model_version: str, labels: Sequence[str], keys: Sequence[Key], probs: np.ndarray
    ) -> None:
        """Store probabilities (rows in `labels` order); a key already stored is kept."""
        encoded = json.dumps(list(labels))
        rows = [
            (model_version, q, h, encoded, json.dumps([float(p) for p in row]))
            for (q, h), row in zip(keys, probs)
        ]
        with self._connect() as db:
            db.executemany("INSERT OR IGNORE INTO labels VALUES (?, ?, ?, ?, ?)", rows)

    def count(self, model_version: str | None = None) -> int:
        with self._connect() as db:
            if model_version is None:
                return int(db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM labels WHERE model_version = ?", (model_version,)
                ).fetchone()[0]
            )

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else float("nan")


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as JSON-able values, so a record hashes the same after a
    Parquet round trip."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value

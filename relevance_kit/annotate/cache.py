"""Persistent response cache (SQLite): every paid answer is stored the moment it arrives,
keyed by model + the full request + sample index, so an interrupted run resumes without
paying twice and a re-run of the same config makes no request at all.

The file lives outside DVC outputs (DVC deletes a stage's outputs before re-running it).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False  # from this response cache (no request made)
    cached_input_tokens: int = 0  # of prompt_tokens, served from the server's prompt cache


def request_key(model: str, request: dict[str, Any], sample: int) -> str:
    payload = json.dumps(
        {"model": model, "request": request, "sample": sample}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, text TEXT, "
            "prompt_tokens INTEGER, completion_tokens INTEGER)"
        )
        self._db.commit()

    def get(self, key: str) -> Completion | None:
        row = self._db.execute(
            "SELECT text, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else Completion(row[0], row[1], row[2], cached=True)

    def put(self, key: str, model: str, completion: Completion) -> None:
        """Store and commit at once: a kill one line later must not lose a paid answer."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
            (key, model, completion.text, completion.prompt_tokens, completion.completion_tokens),
        )
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()

"""Bad input rows are never silently dropped: either a clear error naming file and row, or
(with `on_bad_rows: quarantine`) a quarantine file with the reason, counted in the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from relevance_kit.errors import DataError


@dataclass
class BadRows:
    """Collects bad rows from any input file under one policy."""

    policy: Literal["error", "quarantine"]
    rows: list[dict[str, Any]] = field(default_factory=list)
    _where: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def add(self, file: str, row: int | str, reason: str, record: Any) -> None:
        """Record a bad row; `row` locates it in the file ("line 3", "row 7", a JSON path)."""
        if self.policy == "error":
            raise DataError(
                f"{file}: {row}: {reason} (set data.on_bad_rows: quarantine to set such rows aside)"
            )
        self._where.add((file, str(row)))
        self.rows.append(
            {
                "file": file,
                "row": str(row),
                "reason": reason,
                "record": json.dumps(record, default=str, sort_keys=True),
            }
        )

    def has(self, file: str, row: int | str) -> bool:
        """Whether that row is already set aside (a denormalised row is judged once)."""
        return (file, str(row)) in self._where

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["file", "row", "reason", "record"])

    def counts(self) -> dict[str, int]:
        """Bad rows per reason kind (the text before the first colon)."""
        out: dict[str, int] = {}
        for r in self.rows:
            kind = r["reason"].split(":")[0]
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items()))

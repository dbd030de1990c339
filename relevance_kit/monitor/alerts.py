"""Alerts: a JSON record per alerted day, appended to a JSON-lines file and optionally POSTed
to a webhook (httpx). A webhook failure is reported, never swallowed: the alert still stands."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd

from relevance_kit.io import write_text


def alert_records(
    detected: pd.DataFrame, days: list[str], *, metric: str, detector: str, tier: str
) -> list[dict]:
    """One record per alerted day among `days` (ISO dates)."""
    rows = detected[detected["alert"] & detected["day"].isin(days)]
    return [
        {
            "alert": "relevance_drop",
            "day": row.day,
            "metric": metric,
            "value": float(row.value),
            "trailing_mean": float(row.baseline),
            "statistic": float(row.statistic),
            "detector": detector,
            "labelled_by": tier,
        }
        for row in rows.itertuples()
    ]


def json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def append_alerts(records: list[dict], path: str | Path) -> None:
    """Append records to a JSON-lines file (rewritten atomically)."""
    path = Path(path)
    write_text((path.read_text() if path.exists() else "") + json_lines(records), path)


def post_webhook(url: str, records: list[dict], timeout: float = 10.0) -> str | None:
    """POST {"alerts": records}; returns an error message, or None when the hook accepted it."""
    try:
        response = httpx.post(url, json={"alerts": records}, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return f"webhook {url}: {exc}"
    return None

"""The prepare step: raw source files -> validated listings, queries and judgments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.data import esci
from relevance_kit.data.bad_rows import BadRows
from relevance_kit.data.sources import locate


@dataclass
class Prepared:
    listings: pd.DataFrame
    queries: pd.DataFrame
    judgments: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, Any]


def prepare_dataset(cfg: RelevanceConfig) -> Prepared:
    """Locate, verify and normalise the configured dataset (only the `esci` loader so far:
    a new dataset is a new loader module plus a `conf/data/` file)."""
    data = cfg.data
    paths = {role: locate(spec, data.mirror_dirs, data.download) for role, spec in data.files.items()}
    bad = BadRows(data.on_bad_rows)
    judged_at = esci.utc_midnight(data.judged_at)
    ctx = esci.JudgmentContext(
        rating_to_label=cfg.source_to_label(),
        rating_to_source=dict(data.rating_to_source),
        annotator_id=data.annotator_id,
        guideline_version=cfg.guidelines.version_at(data.judged_at).version,
        judged_at=judged_at,
    )
    queries = esci.load_queries(paths["queries"], bad)
    listings = esci.load_listings(paths["listings"], bad)
    judgments = esci.load_judgments(paths["judgments"], queries, listings, ctx, bad)
    report = {
        "listings": len(listings),
        "queries": len(queries),
        "judgments": len(judgments),
        "judged_queries": int(judgments["query_id"].nunique()),
        "labels": {k: int(v) for k, v in judgments["label"].value_counts().sort_index().items()},
        "guideline_version": ctx.guideline_version,
        "quarantined": len(bad.rows),
        "quarantine_reasons": bad.counts(),
    }
    return Prepared(listings, queries, judgments, bad.frame(), report)

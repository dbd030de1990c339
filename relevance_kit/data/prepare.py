"""The prepare step: raw source files -> validated listings, queries and judgments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.data.bad_rows import BadRows
from relevance_kit.data.sources import locate
from relevance_kit.data.table import JudgmentContext
from relevance_kit.errors import ConfigError
from relevance_kit.schemas import PAIR_KEY


@dataclass
class Prepared:
    listings: pd.DataFrame
    queries: pd.DataFrame
    judgments: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, Any]


def prepare_dataset(cfg: RelevanceConfig) -> Prepared:
    """Locate, verify and normalise the configured dataset with its `data.loader`
    (`relevance_kit.data.table.load_tables` reads any table shape the config describes)."""
    data = cfg.data
    paths = {
        role: locate(spec, data.mirror_dirs, data.download) for role, spec in data.files.items()
    }
    bad = BadRows(data.on_bad_rows)
    day = data.judged_at
    ctx = JudgmentContext(
        source_to_label=cfg.taxonomy.source_maps[data.source_scheme],
        guideline_version=cfg.guidelines.version_at(day).version,
        judged_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
    )
    tables = _loader(data.loader)(data=data, paths=paths, context=ctx, bad=bad)
    judgments = tables.judgments
    report = {
        "listings": len(tables.listings),
        "queries": len(tables.queries),
        "judgments": len(judgments),
        "pairs": int((~judgments.duplicated(PAIR_KEY)).sum()),
        "judged_queries": int(judgments["query_id"].nunique()),
        "annotators": int(judgments["annotator_id"].nunique()),
        "labels": {k: int(v) for k, v in judgments["label"].value_counts().sort_index().items()},
        "raters_disagreed_share": _share(judgments["raters_disagreed"]),
        "guideline_version": ctx.guideline_version,
        "quarantined": len(bad.rows),
        "quarantine_reasons": bad.counts(),
        **tables.notes,
    }
    return Prepared(tables.listings, tables.queries, judgments, bad.frame(), report)


def _loader(node: dict[str, Any]) -> Any:
    """The configured loader as a callable: `_target_` plus its own options (Hydra partial)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        loader = instantiate(dict(node), _partial_=True)
    except InstantiationException as exc:
        raise ConfigError(f"data.loader ({node.get('_target_')}): {exc}") from None
    if not callable(loader):
        raise ConfigError(f"data.loader: {node.get('_target_')} is not callable")
    return loader


def _share(flags: pd.Series) -> float | None:
    """Share of True among the judgments that say (None when none does)."""
    known = flags.dropna()
    return round(float(known.astype(bool).mean()), 4) if len(known) else None

"""`paths` (conf/config.yaml): where the stages read and write."""

from __future__ import annotations

from relevance_kit.config.base import Strict


class PathsConfig(Strict):
    prepared: str
    splits: str
    golden: str
    annotations: str
    soft_labels: str
    predictions: str
    models: str
    metrics: str
    plots: str
    reports: str
    label_store: str  # SQLite file of every scored (model version, query, listing content)

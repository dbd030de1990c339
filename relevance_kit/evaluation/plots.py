"""Evaluation plots: a tier's confusion matrix as a PNG heat map, and as rows for DVC's
confusion plot template."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from relevance_kit.evaluation.metrics import NOT_PREDICTED
from relevance_kit.evaluation.tier_table import _scored_frame
from relevance_kit.io import atomic_path


def plot_confusion(
    cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str
) -> None:
    """Confusion matrix heat map with counts (rows true, columns predicted) as a PNG."""
    counts = np.asarray(cm)
    fig = Figure(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=30, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("golden")
    ax.set_title(title)
    threshold = counts.max() / 2 if counts.size else 0
    for (i, j), count in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def confusion_rows(golden: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
    """One row per golden pair (actual, predicted) for DVC's confusion plot template;
    unpredicted pairs show as `not_predicted`."""
    frame = _scored_frame(golden, pred, "predictions")
    return pd.DataFrame(
        {"actual": frame["y_true"], "predicted": frame["y_pred"].fillna(NOT_PREDICTED)}
    )

"""Result logs and the relevance metrics of a ranked list, per request.

A RESULT LOG is the one format every A/B analysis reads, whether it comes from the search
simulation or from a user's own experiment (parquet, one row per listing of a request):

    request_id  str    one search request (the unit a metric is computed on)
    query_id    str    the query (the unit requests are paired on across arms)
    arm         str    e.g. "control", "treatment", or a mode name in the simulation
    rank        int    1-based position shown; null = retrieved but not shown (filtered)
    listing_id  str
    label       str    a taxonomy label id; null = unjudged          } one of the two
    p_<label>   float  predicted probabilities, one column per label } (or both)

Labels may come from humans, the teacher or the student: the caller says which
(`label_source`) and every output repeats it. With `label`, unjudged listings are handled
by the `unjudged` policy:
- "exclude": condensed lists (Sakai 2007): unjudged listings are removed from the ranking
  before the cut-off, so every metric is over the top-k JUDGED listings; the share of
  unjudged listings among the shown top-k is reported as `unjudged_at_k`.
- "irrelevant": unjudged listings stay in place and count as the worst label (a lower bound).
With `p_<label>` columns (and no label), metrics are expectations under the probabilities.

nDCG's ideal ranking is over every labelled row of the request, shown or not, so a mode that
filters out a relevant listing loses it; for a log of only the shown top-k this is the
list-internal nDCG. Gains come from the taxonomy (linear gains, log2 discount as sklearn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.schemas import RESULT_LOG_COLUMNS, prob_column, require_columns

Unjudged = Literal["exclude", "irrelevant"]


def validate_log(log: pd.DataFrame, labels: Sequence[str], where: str = "result log") -> str:
    """Check a result log and say which label form it carries: 'label' or 'probabilities'."""
    require_columns(log, RESULT_LOG_COLUMNS, where)
    probs = [prob_column(label) for label in labels]
    has_probs = all(c in log.columns for c in probs)
    if "label" not in log.columns and not has_probs:
        raise DataError(f"{where}: needs a `label` column or all of {probs}")
    if log.duplicated(["request_id", "arm", "listing_id"]).any():
        row = int(np.flatnonzero(log.duplicated(["request_id", "arm", "listing_id"]))[0])
        raise DataError(f"{where}: row {row}: listing repeated within one request and arm")
    shown = log.dropna(subset=["rank"])
    if shown.duplicated(["request_id", "arm", "rank"]).any():
        row = int(shown.index[shown.duplicated(["request_id", "arm", "rank"])][0])
        raise DataError(f"{where}: row {row}: two listings share a rank within one request and arm")
    if "label" in log.columns:
        unknown = sorted(set(log["label"].dropna()) - set(labels))
        if unknown:
            raise DataError(f"{where}: labels {unknown} are not in the taxonomy {list(labels)}")
        return "label"
    return "probabilities"


def request_metrics(
    log: pd.DataFrame,
    gains: Mapping[str, float],
    k: int,
    unjudged: Unjudged = "exclude",
) -> pd.DataFrame:
    """One row per (request, arm): pct_relevant, pct_irrelevant and ndcg at k, the share of
    unjudged listings in the shown top-k, and how many listings the metrics are over."""
    labels = list(gains)
    form = validate_log(log, labels)
    best, worst = labels[0], labels[-1]
    frame = log.copy()
    if form == "label":
        if unjudged == "irrelevant":
            frame["label"] = frame["label"].fillna(worst)
        frame["is_best"] = (frame["label"] == best).astype(float)
        frame["is_worst"] = (frame["label"] == worst).astype(float)
        frame["gain"] = frame["label"].map(dict(gains))
        frame["judged"] = frame["label"].notna()
    else:
        probs = frame[[prob_column(label) for label in labels]].to_numpy(dtype=np.float64)
        frame["is_best"], frame["is_worst"] = probs[:, 0], probs[:, -1]
        frame["gain"] = probs @ np.asarray([gains[label] for label in labels])
        frame["judged"] = True
    rows = [
        {
            "request_id": rid,
            "query_id": group["query_id"].iloc[0],
            "arm": arm,
            **_list_metrics(group, k),
        }
        for (rid, arm), group in frame.groupby(["request_id", "arm"], sort=True)
    ]
    return pd.DataFrame(rows)


def _list_metrics(group: pd.DataFrame, k: int) -> dict[str, float]:
    shown = group.dropna(subset=["rank"]).sort_values("rank")
    unjudged_at_k = 1.0 - shown["judged"].head(k).mean() if len(shown) else np.nan
    top = shown[shown["judged"]].head(k)
    ideal = np.sort(group.loc[group["judged"], "gain"].to_numpy(dtype=np.float64))[::-1][:k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(top["gain"].to_numpy(dtype=np.float64) @ discount[: len(top)])
    idcg = float(ideal @ discount[: len(ideal)])
    return {
        "pct_relevant": top["is_best"].mean() if len(top) else np.nan,
        "pct_irrelevant": top["is_worst"].mean() if len(top) else np.nan,
        "ndcg": dcg / idcg if idcg > 0 else np.nan,
        "unjudged_at_k": unjudged_at_k,
        "n_at_k": len(top),
    }

"""Data contracts of the cascade: the columns every stage reads and writes, in one place.

Listings, queries and judgments are parquet files with these pyarrow schemas; the golden set,
every tier's predictions, the teacher's soft labels, the request and result logs and the
monitoring series are frames with the columns below, built by the helpers here so producers
need not import a consumer (the tier table, the integration) for them. Stages check incoming
frames with `require_columns` so a wrong file fails with its name and the missing columns
rather than a KeyError deep inside a computation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from relevance_kit.errors import DataError
from relevance_kit.io import read_parquet

STR_MAP = pa.map_(pa.string(), pa.string())

LISTING_SCHEMA = pa.schema(
    [
        ("listing_id", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("bullet_points", pa.list_(pa.string())),
        ("attributes", STR_MAP),  # name -> value
        ("variations", pa.list_(pa.string())),
        ("category", pa.list_(pa.string())),  # path, root first
        ("brand", pa.string()),
        ("color", pa.string()),
        ("image_urls", pa.list_(pa.string())),
        ("price", pa.float64()),
        ("rating", pa.float64()),
        ("rating_count", pa.int64()),
        ("entities", STR_MAP),  # extracted entity type -> value
    ]
)

QUERY_SCHEMA = pa.schema([("query_id", pa.string()), ("text", pa.string())])

JUDGMENT_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("listing_id", pa.string()),
        ("annotator_id", pa.string()),
        ("label", pa.string()),  # a taxonomy label id
        ("source_label", pa.string()),  # the label in the source's own scheme (e.g. ESCI "E")
        ("rationale", pa.string()),
        ("confidence", pa.float64()),
        ("source", pa.string()),  # human | llm | teacher | student
        ("guideline_version", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)

# The dataset's own judgments (prepare's output) keep what the source said beyond the label:
# its numeric grade (Home Depot: the mean of 3+ raters' 1-3 grades) and whether its raters
# certainly disagreed (a mean that is not a whole grade); both null where the source does not say.
PREPARED_JUDGMENT_SCHEMA = pa.schema(
    [*JUDGMENT_SCHEMA, ("grade", pa.float64()), ("raters_disagreed", pa.bool_())]
)

# A pair table (splits, pools, golden): one row per (query, listing).
PAIR_KEY = ["query_id", "listing_id"]
JUDGMENT_KEY = [*PAIR_KEY, "annotator_id"]  # one judgment per annotator and pair
LABELLED_PAIRS = [*PAIR_KEY, "label"]  # what every reader of the golden set uses

# The golden set (golden stage): one row per pair, with how its label was reached; votes text
# as written by relevance_kit.voting.votes_text.
GOLDEN_COLUMNS = [*LABELLED_PAIRS, "n_annotators", "unanimous", "resolution", "votes"]

# Every tier's predictions (<paths.predictions>/<tier>.parquet), plus optional p_<label>
# columns; label NaN (or a missing pair) means the tier did not predict it.
PREDICTION_COLUMNS = [*LABELLED_PAIRS, "score"]

# The request log (live search, one row per shown slot; see relevance_kit.monitor.log_format).
REQUEST_LOG_COLUMNS = ["date", "request_id", "query", "listing_id", "position"]
REQUEST_LOG_OPTIONAL = ["variant", "query_id"]
REQUEST_LOG_PER_REQUEST = ["date", "query", "query_id", "variant"]  # one value per request

# A result log (simulation or experiment, one row per listing of a request; see
# relevance_kit.integrate.results) and the per-request relevance metrics computed from it.
RESULT_LOG_COLUMNS = ["request_id", "query_id", "arm", "rank", "listing_id"]
METRICS = ("pct_relevant", "pct_irrelevant", "ndcg")

# The daily monitoring series: one row per day, metric means and their standard errors.
SERIES_COLUMNS = ["day", "n_requests", "n_sampled", *METRICS, *(f"{m}_se" for m in METRICS), "tier"]

SOURCES = ("human", "llm", "teacher", "student")


def require_columns(df: pd.DataFrame, columns: list[str] | pa.Schema, where: str | Path) -> None:
    """Fail with the file name and the missing columns when `df` lacks any of `columns`."""
    names = columns.names if isinstance(columns, pa.Schema) else list(columns)
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found {list(df.columns)}")


def prob_column(label_id: str) -> str:
    """Soft-label column name for one taxonomy label (one probability column per label)."""
    return f"p_{label_id}"


def read_frame(path: str | Path, columns: list[str] | pa.Schema) -> pd.DataFrame:
    """Read a parquet another stage wrote and check it carries `columns`."""
    frame = read_parquet(path)
    require_columns(frame, columns, path)
    return frame


def prediction_frame(
    pairs: pd.DataFrame,
    labels: Sequence[object],
    scores: Sequence[float] | None = None,
    probabilities: Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """A tier's predictions in the common contract: query_id, listing_id, label, score (NaN
    when the tier has none) and, when it has probabilities, one column per taxonomy label."""
    frame = pairs[PAIR_KEY].reset_index(drop=True).copy()
    frame["label"] = pd.Series(list(labels), dtype=object)
    frame["score"] = np.nan if scores is None else np.asarray(scores, dtype=np.float64)
    for label, probs in (probabilities or {}).items():
        frame[prob_column(label)] = np.asarray(probs, dtype=np.float64)
    return frame


def expected_gain(scored: pd.DataFrame, gains: Mapping[str, float]) -> np.ndarray:
    """Predicted relevance as one number: the expected taxonomy gain under the p_<label> columns."""
    return scored[[prob_column(label) for label in gains]].to_numpy(dtype=np.float64) @ np.asarray(
        list(gains.values())
    )


def soft_label_frame(pairs: pd.DataFrame, probs: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """The soft-label contract (the student's targets): query_id, listing_id, p_<label>...
    (rows sum to 1), label (argmax), entropy in nats, like the cross-entropy losses."""
    from scipy import stats  # imported here: at the top it would add ~0.7 s to every importer

    if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-5):
        raise DataError("teacher probabilities must sum to 1 per pair")
    frame = pairs[PAIR_KEY].reset_index(drop=True).copy()
    for i, label in enumerate(labels):
        frame[prob_column(label)] = probs[:, i]
    frame["label"] = [labels[i] for i in probs.argmax(axis=1)]
    frame["entropy"] = stats.entropy(probs, axis=1)
    return frame


def empty_series() -> pd.DataFrame:
    """A monitoring series with no days yet, its columns typed."""
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in ("day", "tier") else float) for c in SERIES_COLUMNS}
    )

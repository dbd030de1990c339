"""Data contracts of the cascade: the columns every stage reads and writes.

Listings, queries and judgments are parquet files with these pyarrow schemas. Stages check
incoming frames with `require_columns` so a wrong file fails with its name and the missing
columns rather than a KeyError deep inside a computation.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from relevance_kit.errors import DataError

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

"""The transfer table on small data: each tier's threshold-free measures on another dataset's
golden pairs, and its Markdown. (The whole stage runs in tests/test_pipeline_e2e.py, where its
table must repeat the tier table's, and on the real Home Depot golden set in
tests/test_homedepot.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from relevance_kit.evaluation.transfer import render_transfer_markdown, summarise

GAINS = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}


def _golden(n_queries: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        (f"q{q}", f"l{q}_{i}", label)
        for q in range(n_queries)
        for i, label in enumerate(rng.choice(list(GAINS), size=6))
    ]
    return pd.DataFrame(rows, columns=["query_id", "listing_id", "label"])


def _table(golden: pd.DataFrame, scores: dict[str, np.ndarray]) -> dict:
    return summarise(golden, scores, GAINS, 10, 200, 0, 0.95, source="esci_us", target="homedepot")


def test_a_score_that_orders_the_labels_scores_one_and_its_reverse_zero() -> None:
    golden = _golden()
    gain = golden["label"].map(GAINS).to_numpy()
    table = _table(
        golden,
        {"oracle": gain, "reversed": -gain, "noise": np.random.default_rng(1).random(len(gain))},
    )
    assert (table["n_pairs"], table["n_queries"]) == (72, 12)
    assert sum(table["labels"].values()) == 72 and list(table["labels"]) == list(GAINS)
    oracle, reverse = table["tiers"]["oracle"], table["tiers"]["reversed"]
    for label in ("relevant", "irrelevant"):
        assert oracle["auc_vs_rest"][label]["estimate"] == pytest.approx(1.0)
        assert reverse["auc_vs_rest"][label]["estimate"] == pytest.approx(0.0)
    assert oracle["ndcg_at_10"]["estimate"] == pytest.approx(1.0)
    assert reverse["ndcg_at_10"]["estimate"] < oracle["ndcg_at_10"]["estimate"]
    noise = table["tiers"]["noise"]["auc_vs_rest"]["relevant"]
    assert noise["low"] < noise["estimate"] < noise["high"] and 0.2 < noise["estimate"] < 0.8


def test_markdown_has_a_row_per_tier_with_intervals() -> None:
    golden = _golden()
    gain = golden["label"].map(GAINS).to_numpy()
    table = _table(
        golden, {"bm25": gain + np.random.default_rng(2).normal(0, 1, len(gain)), "student": gain}
    )
    md = render_transfer_markdown(table)
    assert "esci_us tiers on the homedepot golden set" in md and "72 pairs, 12 queries" in md
    student = table["tiers"]["student"]["auc_vs_rest"]["irrelevant"]
    assert f"| student | 1.000 [1.000, 1.000] | {student['estimate']:.3f}" in md
    assert md.count("\n| bm25 |") == 1
    none = render_transfer_markdown({"source": "esci_us", "target": None, "tiers": {}})
    assert "No transfer target configured" in none

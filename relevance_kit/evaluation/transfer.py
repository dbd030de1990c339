"""Cross-dataset transfer: this experiment's tiers scored on another dataset's golden set.

A tier trained on one catalogue is scored, unchanged, on pairs from another: does what it
learned carry over, or only what its pretrained encoder already knew? Only threshold-free
measures are meaningful here (thresholds and decision biases were fitted on the source), so
each tier gives AUC of the best and worst label vs the rest and nDCG@k of its score, with
query-resampled intervals, beside BM25 and zero-shot MiniLM on the same pairs.

| tier               | score on a target pair                                         |
| ------------------ | -------------------------------------------------------------- |
| `bm25`             | BM25 over the target catalogue (no training)                   |
| `minilm_zero_shot` | cosine of the pretrained MiniLM embeddings (no training)       |
| `teacher`          | expected gain under this experiment's teacher (label store)    |
| `student`          | expected gain under the exported student, listings given as text |

The target golden set is built as the target's own experiment builds it (`prepare`, the
golden split of `sample`, `golden`), from the target's data, guidelines and sampling groups,
so BM25's figures here equal those in the target experiment's tier table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from relevance_kit.config import RelevanceConfig
from relevance_kit.data.prepare import prepare_dataset
from relevance_kit.evaluation.baselines import BM25Baseline, MiniLMZeroShot
from relevance_kit.evaluation.ranking_metrics import threshold_free
from relevance_kit.golden.build import build_golden, review_context
from relevance_kit.sampling import golden_pool, split_queries
from relevance_kit.schemas import PAIR_KEY, expected_gain
from relevance_kit.student.data import catalogue_texts
from relevance_kit.student.scorer import RelevanceScorer
from relevance_kit.teacher.pairs import teacher_pairs


@dataclass
class TargetGolden:
    golden: pd.DataFrame  # query_id, listing_id, label (the golden contract)
    queries: pd.DataFrame
    listings: pd.DataFrame


def target_golden(target: RelevanceConfig) -> TargetGolden:
    """The target's golden set, as its own prepare, sample and golden stages build it (no
    review files: only the dataset's own judgments)."""
    prepared = prepare_dataset(target)
    s = target.sampling
    splits = split_queries(
        prepared.queries, prepared.judgments, prepared.listings, s.splits, target.seed,
        s.query_strata, s.max_queries,
    )  # fmt: skip
    judged = prepared.judgments.drop_duplicates(PAIR_KEY)[PAIR_KEY + ["label"]]
    pairs = golden_pool(judged, splits, s.golden.max_pairs_per_query, target.seed)[PAIR_KEY]
    pairs = pairs.sort_values(PAIR_KEY).reset_index(drop=True)
    context = review_context(pairs, prepared.queries, prepared.listings)
    labels = target.taxonomy.ids
    golden = build_golden(pairs, prepared.judgments, {}, labels, target.golden.tie_break, context)
    return TargetGolden(golden.golden, prepared.queries, prepared.listings)


TierScore = Callable[[RelevanceConfig, TargetGolden], np.ndarray]


def _bm25(cfg: RelevanceConfig, t: TargetGolden) -> np.ndarray:
    return BM25Baseline(t.queries, t.listings).pair_scores(t.golden)


def _minilm(cfg: RelevanceConfig, t: TargetGolden) -> np.ndarray:
    return MiniLMZeroShot(t.queries, t.listings).pair_scores(t.golden)


def _teacher(cfg: RelevanceConfig, t: TargetGolden) -> np.ndarray:
    query_text = dict(zip(t.queries["query_id"], t.queries["text"]))
    scored = teacher_pairs(cfg, query_text, t.listings, "transfer").score_pairs(t.golden)
    return expected_gain(scored, cfg.taxonomy.gains)


def _student(cfg: RelevanceConfig, t: TargetGolden) -> np.ndarray:
    """The exported student (served variant), each target listing encoded from its text."""
    export_dir = Path(cfg.paths.models) / "student" / cfg.student.name / "export"
    scorer = RelevanceScorer.load(
        export_dir, threads=cfg.student.service.threads, text_listings=True
    )
    texts = catalogue_texts(t.listings, scorer.manifest["listing_fields"])
    query_text = dict(zip(t.queries["query_id"], t.queries["text"]))
    gains = np.asarray([cfg.taxonomy.gains[label] for label in scorer.labels])
    score = np.zeros(len(t.golden))
    for query_id, rows in tqdm(
        t.golden.groupby("query_id").indices.items(), desc="student (transfer)", unit="query"
    ):
        listing_texts = [texts[lid] for lid in t.golden["listing_id"].iloc[rows]]
        score[rows] = scorer.score(query_text[query_id], [], listing_texts) @ gains
    return score


TIER_SCORES: dict[str, TierScore] = {
    "bm25": _bm25,
    "minilm_zero_shot": _minilm,
    "teacher": _teacher,
    "student": _student,
}


def transfer_table(cfg: RelevanceConfig) -> dict[str, Any]:
    """Each of `transfer.tiers` scored on the target's golden set, threshold-free."""
    target = cfg.transfer_target()
    t = target_golden(target)
    scores = {name: TIER_SCORES[name](cfg, t) for name in cfg.transfer.tiers}
    ev = cfg.evaluation
    return summarise(
        t.golden, scores, cfg.taxonomy.gains, ev.ndcg_k, ev.bootstrap_resamples, cfg.seed,
        ev.confidence, source=cfg.data.name, target=target.data.name,
    )  # fmt: skip


def summarise(
    golden: pd.DataFrame, scores: dict[str, np.ndarray], gains: dict[str, float], k: int,
    n_resamples: int, seed: int, confidence: float, *, source: str, target: str,
) -> dict[str, Any]:  # fmt: skip
    """The transfer table: threshold-free measures of each tier's scores (aligned with the
    rows of `golden`: query_id, listing_id, label) on the same query resamples."""
    labels = list(gains)
    frame = golden[["query_id"]].assign(y_true=golden["label"].to_numpy())
    counts = golden["label"].value_counts().reindex(labels, fill_value=0)
    return {
        "source": source,
        "target": target,
        "n_queries": int(golden["query_id"].nunique()),
        "n_pairs": len(golden),
        "labels": {label: int(n) for label, n in counts.items()},
        "ndcg_k": k,
        "confidence": confidence,
        "tiers": {
            name: threshold_free(
                frame.assign(score=score), labels, gains, k, n_resamples, seed, confidence
            )
            for name, score in scores.items()
        },
    }


def render_transfer_markdown(table: dict[str, Any]) -> str:
    """The transfer table as Markdown: one row per tier, estimates with their intervals."""
    if table.get("target") is None:
        return "# Transfer\n\nNo transfer target configured (`transfer=none`).\n"
    labels = list(table["labels"])
    best, worst = labels[0], labels[-1]
    k = table["ndcg_k"]

    def cell(m: dict[str, float]) -> str:
        return f"{m['estimate']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"

    lines = [
        f"# Transfer: {table['source']} tiers on the {table['target']} golden set",
        "",
        (
            f"{table['n_pairs']} pairs, {table['n_queries']} queries; threshold-free only (the "
            f"tiers' thresholds were fitted on {table['source']}). Intervals: "
            f"{table['confidence']:.0%} over query resamples."
        ),
        "",
        f"| tier | AUC {best} vs rest | AUC {worst} vs rest | nDCG@{k} |",
        "|---|---|---|---|",
    ]
    for name, m in table["tiers"].items():
        auc = m["auc_vs_rest"]
        lines.append(
            f"| {name} | {cell(auc[best])} | {cell(auc[worst])} | {cell(m[f'ndcg_at_{k}'])} |"
        )
    return "\n".join(lines) + "\n"

"""DVC stage `teacher_label`: the trained teacher scores the teacher and unlabeled pools
(soft labels for the student) and the golden pairs (its row in the tier table), one forward
pass per pair, decision biases applied, through the label store (a pair this teacher version
already scored, here or in monitoring, is not scored again); `inference=ray` labels the
misses as a resumable Ray Data job over Parquet shards."""

import time
from pathlib import Path

import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.schemas import (
    LABELLED_PAIRS,
    PAIR_KEY,
    expected_gain,
    prediction_frame,
    prob_column,
    read_frame,
    soft_label_frame,
)
from relevance_kit.stage import run_stage
from relevance_kit.teacher.pairs import teacher_pairs


def main(cfg: RelevanceConfig) -> None:
    labels = cfg.taxonomy.ids
    prepared, splits = Path(cfg.paths.prepared), Path(cfg.paths.splits)
    queries, listings = (
        read_parquet(prepared / "queries.parquet"),
        read_parquet(prepared / "listings.parquet"),
    )
    scorer = teacher_pairs(
        cfg, dict(zip(queries["query_id"], queries["text"])), listings, "teacher_label"
    )
    columns = [prob_column(label) for label in labels]
    pools = pd.concat(
        [
            read_parquet(splits / f"{name}_pool.parquet")[PAIR_KEY]
            for name in ("teacher", "unlabeled")
        ]
    )
    pools = pools.drop_duplicates().reset_index(drop=True)
    golden = read_frame(Path(cfg.paths.golden) / "golden.parquet", LABELLED_PAIRS)

    started = time.perf_counter()
    pool_probs = scorer.score_pairs(pools)[columns].to_numpy()
    golden_probs = scorer.score_pairs(golden)[columns].to_numpy()
    seconds = time.perf_counter() - started

    soft = soft_label_frame(pools, pool_probs, labels)
    write_parquet(soft, Path(cfg.paths.soft_labels) / "soft_labels.parquet")
    decided = soft_label_frame(golden, golden_probs, labels)
    probabilities = {label: decided[prob_column(label)] for label in labels}
    score = expected_gain(decided, cfg.taxonomy.gains)
    write_parquet(
        prediction_frame(golden, decided["label"], score, probabilities),
        Path(cfg.paths.predictions) / "teacher.parquet",
    )
    n = len(pools) + len(golden)
    metrics = {
        "teacher": cfg.teacher.name, "model_version": scorer.model_version, "backend": cfg.inference.backend,
        "pairs": n, "pairs_scored": scorer.store.misses, "label_store_hits": scorer.store.hits,
        "pairs_per_second": round(scorer.store.misses / seconds, 2) if scorer.store.misses else None,
        "soft_label_mean_entropy": float(soft["entropy"].mean()),
        "soft_label_distribution": soft["label"].value_counts().reindex(labels, fill_value=0).to_dict(),
    }  # fmt: skip
    write_json(metrics, Path(cfg.paths.metrics) / "teacher_label.json")
    print(metrics)


if __name__ == "__main__":
    run_stage(main)

"""DVC stage `teacher_label`: the trained teacher scores the teacher and unlabeled pools
(soft labels for the student) and the golden pairs (its row in the tier table), one forward
pass per pair, decision biases applied."""

import time
from pathlib import Path

import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.report import prediction_frame
from relevance_kit.schemas import PAIR_KEY, prob_column
from relevance_kit.stage import run_stage
from relevance_kit.integrate.scorers import expected_gain
from relevance_kit.teacher.scoring import make_scorer, score_frame, soft_label_frame
from relevance_kit.teacher.train import load_biases


def main(cfg: RelevanceConfig) -> None:
    labels = cfg.taxonomy.ids
    teacher_dir = Path(cfg.paths.models) / "teacher" / cfg.teacher.name
    biases = load_biases(teacher_dir, labels)
    scorer = make_scorer(cfg, teacher_dir / "export", cfg.inference)
    prepared, splits = Path(cfg.paths.prepared), Path(cfg.paths.splits)
    queries, listings = read_parquet(prepared / "queries.parquet"), read_parquet(prepared / "listings.parquet")
    pools = pd.concat([read_parquet(splits / f"{name}_pool.parquet")[PAIR_KEY] for name in ("teacher", "unlabeled")])
    pools = pools.drop_duplicates().reset_index(drop=True)
    golden = read_parquet(Path(cfg.paths.golden) / "golden.parquet")

    started = time.perf_counter()
    pool_probs = biases.apply(score_frame(scorer, pools, queries, listings, "teacher+unlabeled pools"))
    golden_probs = biases.apply(score_frame(scorer, golden, queries, listings, "golden pairs"))
    seconds = time.perf_counter() - started

    soft = soft_label_frame(pools, pool_probs, labels)
    write_parquet(soft, Path(cfg.paths.soft_labels) / "soft_labels.parquet")
    decided = soft_label_frame(golden, golden_probs, labels)
    probabilities = {label: decided[prob_column(label)] for label in labels}
    score = expected_gain(decided, cfg.taxonomy.gains)
    write_parquet(prediction_frame(golden, decided["label"], score, probabilities), Path(cfg.paths.predictions) / "teacher.parquet")
    n = len(pools) + len(golden)
    metrics = {
        "teacher": cfg.teacher.name, "backend": cfg.inference.backend, "pairs_scored": n,
        "pairs_per_second": round(n / seconds, 2), "soft_label_mean_entropy": float(soft["entropy"].mean()),
        "soft_label_distribution": soft["label"].value_counts().reindex(labels, fill_value=0).to_dict(),
    }  # fmt: skip
    write_json(metrics, Path(cfg.paths.metrics) / "teacher_label.json")
    print(metrics)


if __name__ == "__main__":
    run_stage(main)

"""DVC stage `annotate`: label the annotate pool with the configured annotator.

Output contract (stable across backends): judgments parquet (schemas.JUDGMENT_SCHEMA).
LLM backends run only after validate_annotator's gate passed (or on_fail: warn); pairs
below the self-consistency threshold or unresolved go to the human review queue
(<annotations>/review/: review CSV + Label Studio tasks), not into the judgments.
"""

import json
from pathlib import Path

from relevance_kit.annotate.human import replay_human_labels
from relevance_kit.annotate.run import (
    annotate_pairs,
    export_review_queue,
    join_text,
    llm_judgments,
    load_shots,
    open_annotator,
    pool_subset,
)  # fmt: skip
from relevance_kit.annotate.validation import GateFailed
from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.schemas import JUDGMENT_SCHEMA
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    pool = read_parquet(Path(cfg.paths.splits) / "annotate_pool.parquet")
    judgments = read_parquet(Path(cfg.paths.prepared) / "judgments.parquet")
    summary: dict = {"annotator": cfg.annotator.name}
    if cfg.annotator.backend == "human":
        labels = replay_human_labels(pool, judgments)
    else:
        validation = json.loads((Path(cfg.paths.metrics) / "annotator_validation.json").read_text())
        if not validation["gate"]["passed"] and cfg.annotator.gate.on_fail == "stop":
            raise GateFailed(
                f"validate_annotator's gate failed ({'; '.join(validation['gate']['misses'])}): the pool is not labelled"
            )
        queries = read_parquet(Path(cfg.paths.prepared) / "queries.parquet")
        listings = read_parquet(Path(cfg.paths.prepared) / "listings.parquet")
        pairs = join_text(
            pool_subset(pool, cfg.annotator.max_pool_pairs, cfg.seed),
            queries,
            listings,
            "annotate pool",
        )
        with open_annotator(cfg, load_shots(cfg, queries, listings)) as annotator:
            results = annotate_pairs(annotator, pairs, desc="annotate")
            summary["usage"] = annotator.request.meter.summary()
        labels = llm_judgments(results, cfg)
        summary["pool_pairs"], summary["routed_to_review"] = (
            len(pairs),
            export_review_queue(pairs, results, Path(cfg.paths.annotations) / "review", cfg),
        )
    write_parquet(labels, Path(cfg.paths.annotations) / "judgments.parquet", JUDGMENT_SCHEMA)
    counts = {k: int(v) for k, v in labels["label"].value_counts().sort_index().items()}
    write_json(
        {**summary, "pairs": len(labels), "labels": counts},
        Path(cfg.paths.metrics) / "annotate.json",
    )
    print(f"annotate ({cfg.annotator.name}): {len(labels)} pairs {counts}")


if __name__ == "__main__":
    run_stage(main)

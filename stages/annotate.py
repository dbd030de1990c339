"""DVC stage `annotate`: label the annotate pool with the configured annotator.

Output contract (stable across backends): judgments parquet (schemas.JUDGMENT_SCHEMA).
"""

from pathlib import Path

from relevance_kit.annotate.human import replay_human_labels
from relevance_kit.config import RelevanceConfig
from relevance_kit.errors import ConfigError
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.schemas import JUDGMENT_SCHEMA
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    if cfg.annotator.backend != "human":
        raise ConfigError(
            f"annotator.backend = {cfg.annotator.backend!r}: only 'human' (replay) runs in this "
            "release; LLM backends are not implemented yet"
        )
    pool = read_parquet(Path(cfg.paths.splits) / "annotate_pool.parquet")
    judgments = read_parquet(Path(cfg.paths.prepared) / "judgments.parquet")
    labels = replay_human_labels(pool, judgments)
    write_parquet(labels, Path(cfg.paths.annotations) / "judgments.parquet", JUDGMENT_SCHEMA)
    counts = {k: int(v) for k, v in labels["label"].value_counts().sort_index().items()}
    write_json({"annotator": cfg.annotator.name, "pairs": len(labels), "labels": counts},
               Path(cfg.paths.metrics) / "annotate.json")
    print(f"annotate ({cfg.annotator.name}): {len(labels)} pairs {counts}")


if __name__ == "__main__":
    run_stage(main)

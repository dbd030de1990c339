"""DVC stage `train_teacher`: fine-tune the configured teacher on the annotator's labels
(held-out queries for validation macro-F1 and decision biases) and export it."""

from pathlib import Path

from dvclive.lightning import DVCLiveLogger

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json
from relevance_kit.stage import run_stage
from relevance_kit.teacher.train import train_teacher


def main(cfg: RelevanceConfig) -> None:
    prepared = Path(cfg.paths.prepared)
    labelled = read_parquet(Path(cfg.paths.annotations) / "judgments.parquet")
    logger = DVCLiveLogger(dir="dvclive/teacher", dvcyaml=None, save_dvc_exp=False, report=None)
    metrics = train_teacher(
        cfg, labelled, read_parquet(prepared / "queries.parquet"), read_parquet(prepared / "listings.parquet"),
        Path(cfg.paths.models) / "teacher" / cfg.teacher.name, logger,
    )  # fmt: skip
    write_json(metrics, Path(cfg.paths.metrics) / "teacher_train.json")
    print(metrics)


if __name__ == "__main__":
    run_stage(main)

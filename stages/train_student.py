"""DVC stage `train_student`: distil the two-tower student from the targets (teacher soft
labels, or annotator labels one-hot) with hard labels where they exist."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import write_json
from relevance_kit.stage import run_stage
from relevance_kit.student.train import fit_student


def main(cfg: RelevanceConfig) -> None:
    model_dir = Path(cfg.paths.models) / "student" / cfg.student.name
    summary = fit_student(
        cfg, model_dir / "runs", Path("dvclive") / "student", model_dir / "student.ckpt"
    )
    write_json(summary, Path(cfg.paths.metrics) / "train_student.json")
    print(
        f"student {cfg.student.name}: {summary['train_pairs']} training pairs, {summary['fit_seconds']} s"
    )


if __name__ == "__main__":
    run_stage(main)

"""DVC stage `golden`: the golden set from one or more human annotators per pair, its
agreement report, the review queue (CSV and Label Studio files) for unresolved pairs, and the
label-noise ceiling of the dataset's rater panels."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.golden import export_label_studio_tasks, export_review_csv, label_studio_config
from relevance_kit.golden.build import build_golden, read_annotation_file, review_context
from relevance_kit.golden.noise_ceiling import measure
from relevance_kit.io import read_parquet, write_json, write_parquet, write_text
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    labels, display = cfg.taxonomy.ids, cfg.taxonomy.display
    prepared = Path(cfg.paths.prepared)
    pairs = read_parquet(Path(cfg.paths.splits) / "golden_pool.parquet")
    judgments = read_parquet(prepared / "judgments.parquet")
    imports = {
        path: read_annotation_file(path, labels, display) for path in cfg.golden.annotation_files
    }
    context = review_context(
        pairs,
        read_parquet(prepared / "queries.parquet"),
        read_parquet(prepared / "listings.parquet"),
    )

    result = build_golden(pairs, judgments, imports, labels, cfg.golden.tie_break, context)

    out = Path(cfg.paths.golden)
    write_parquet(result.golden, out / "golden.parquet")
    if "csv" in cfg.golden.review_formats:
        export_review_csv(result.review, out / "review" / "review.csv", labels, display)
    if "label_studio" in cfg.golden.review_formats:
        export_label_studio_tasks(
            result.review, out / "review" / "label_studio_tasks.json", labels, display
        )
        write_text(label_studio_config(labels, display), out / "review" / "label_studio_config.xml")
    write_json(result.report, Path(cfg.paths.metrics) / "agreement.json")
    write_json(measure(cfg, judgments), Path(cfg.paths.metrics) / "noise_ceiling.json")
    print(f"golden: {result.report['golden_pairs']} pairs, {result.report['to_review']} to review")


if __name__ == "__main__":
    run_stage(main)

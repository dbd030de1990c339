"""DVC stage `evaluate`: every tier on the same golden set: macro-F1 and per-class F1 with
query-level bootstrap CIs, paired differences against the reference, threshold-free AUC and
nDCG of each tier's score, confusion matrices."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.plots import confusion_rows, plot_confusion
from relevance_kit.evaluation.tier_table import render_markdown, tier_table
from relevance_kit.io import write_csv, write_json, write_text
from relevance_kit.schemas import LABELLED_PAIRS, PREDICTION_COLUMNS, read_frame
from relevance_kit.stage import run_stage

# Cascade tiers whose stage writes `<paths.predictions>/<tier>.parquet` (the prediction
# contract of relevance_kit.schemas.prediction_frame). A tier listed here must also be a
# dependency of `evaluate` in dvc.yaml.
CASCADE_TIERS: tuple[str, ...] = ("annotator", "teacher", "student")


def main(cfg: RelevanceConfig) -> None:
    golden = read_frame(Path(cfg.paths.golden) / "golden.parquet", LABELLED_PAIRS)
    baselines = Path(cfg.paths.predictions) / "baselines"
    predictions = {
        name: read_frame(baselines / f"{name}.parquet", PREDICTION_COLUMNS)
        for name in cfg.evaluation.baselines
    }
    for tier in CASCADE_TIERS:
        pred = read_frame(Path(cfg.paths.predictions) / f"{tier}.parquet", PREDICTION_COLUMNS)
        # the tier does not apply to this config (e.g. annotator=human)
        if "tier_note" in pred.attrs:
            print(f"{tier}: not scored: {pred.attrs['tier_note']}")
            continue
        predictions[tier] = pred
    ev = cfg.evaluation
    reference = (
        list(cfg.evaluation.baselines)
        if ev.reference_tier == "best_baseline"
        else ev.reference_tier
    )
    table = tier_table(
        golden,
        predictions,
        cfg.taxonomy.ids,
        ev.bootstrap_resamples,
        cfg.seed,
        reference,
        ev.confidence,
        gains=cfg.taxonomy.gains,
        ndcg_k=ev.ndcg_k,
    )

    write_json(table, Path(cfg.paths.metrics) / "tiers.json")
    write_text(render_markdown(table), Path(cfg.paths.reports) / "tiers.md")
    plots = Path(cfg.paths.plots) / "confusion"
    for name, pred in predictions.items():
        plot_confusion(
            table["tiers"][name]["confusion_matrix"],
            cfg.taxonomy.ids,
            plots / f"{name}.png",
            f"{name} vs golden",
        )
        write_csv(confusion_rows(golden, pred), plots / f"{name}.csv")
    print(render_markdown(table))


if __name__ == "__main__":
    run_stage(main)

"""DVC stage `validate_annotator`: the annotator on golden pairs (macro-F1, per-class F1,
kappa, confusion, agreement by self-consistency) and the gate that lets it label the pool.

Writes data/predictions/annotator.parquet (prediction contract + self_consistency) for the
tier table. annotator=human: its labels are golden, so there is nothing to measure: the
file holds no rows and a `tier_note` saying so, and evaluate skips the tier.
"""

from pathlib import Path

from relevance_kit.annotate.run import (
    annotate_pairs,
    join_text,
    load_shots,
    open_annotator,
    predictions,
)
from relevance_kit.annotate.validation import (
    GateFailed,
    check_gate,
    gate_message,
    golden_subset,
    plot_agreement,
    validation_report,
    write_tier_note,
)  # fmt: skip
from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.plots import plot_confusion
from relevance_kit.io import read_parquet, write_json, write_parquet, write_text
from relevance_kit.schemas import LABELLED_PAIRS, read_frame
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    out = Path(cfg.paths.predictions) / "annotator.parquet"
    metrics = Path(cfg.paths.metrics) / "annotator_validation.json"
    plots = Path(cfg.paths.plots) / "annotator"
    if cfg.annotator.backend == "human":
        note = "annotator=human replays human labels, which are the golden set's source: nothing to validate"
        write_tier_note(out, note)
        write_json(
            {"annotator": cfg.annotator.name, "note": note, "gate": {"passed": True}}, metrics
        )
        write_text(note + "\n", plots / "NOT_VALIDATED.txt")
        print(f"validate_annotator: {note}")
        return

    queries = read_parquet(Path(cfg.paths.prepared) / "queries.parquet")
    listings = read_parquet(Path(cfg.paths.prepared) / "listings.parquet")
    golden = golden_subset(
        read_frame(Path(cfg.paths.golden) / "golden.parquet", LABELLED_PAIRS),
        cfg.annotator.gate,
        cfg.seed,
    )
    pairs = join_text(golden, queries, listings, "golden")
    with open_annotator(cfg, load_shots(cfg, queries, listings)) as annotator:
        results = annotate_pairs(annotator, pairs, desc="validate_annotator")
        usage = annotator.request.meter.summary()
    preds = predictions(pairs, results, cfg.taxonomy.ids)
    write_parquet(preds, out)

    report = validation_report(golden, preds, cfg.taxonomy.ids)
    gate = check_gate(report, cfg.annotator.gate)
    write_json(
        {
            "annotator": cfg.annotator.name,
            "model": cfg.annotator.model,
            "n_pairs": len(pairs),
            **report,
            "gate": gate,
            "usage": usage,
        },
        metrics,
    )
    plot_confusion(
        report["confusion_matrix"],
        cfg.taxonomy.ids,
        plots / "confusion.png",
        f"annotator {cfg.annotator.name} vs golden",
    )
    plot_agreement(
        report, plots / "agreement_by_self_consistency.png", f"annotator {cfg.annotator.name}"
    )
    print(
        f"validate_annotator ({cfg.annotator.name}, {len(pairs)} golden pairs): macro-F1 {report['macro_f1']:.3f}, "
        f"kappa {report['cohen_kappa']:.3f}, unresolved {report['unresolved']}, requests {usage['requests']}, "
        f"cache hits {usage['cache_hits']}, cost ${usage['cost_usd']:.4f}"
    )
    if not gate["passed"]:
        message = gate_message(cfg.annotator.name, len(pairs), gate["misses"])
        if cfg.annotator.gate.on_fail == "stop":
            raise GateFailed(message)
        print(f"WARNING (annotator.gate.on_fail = warn): {message}")


if __name__ == "__main__":
    run_stage(main)

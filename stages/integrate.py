"""DVC stage `integrate`: simulated search on the held-out (golden) queries under the
popularity baseline, each integration mode alone and all stacked; relevance metrics with the
golden human labels, paired per-query A/B statistics against the baseline, a plot."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.integrate.experiment import (
    effect_rows,
    integration_report,
    plot_effects,
    render_markdown,
    run_simulation,
)
from relevance_kit.integrate.modes import instantiate_modes
from relevance_kit.integrate.scorers import load_scorer
from relevance_kit.integrate.simulate import ranker_arms
from relevance_kit.io import read_parquet, write_csv, write_json, write_parquet, write_text
from relevance_kit.schemas import LABELLED_PAIRS, read_frame
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    ic = cfg.integration
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    golden = read_frame(Path(cfg.paths.golden) / "golden.parquet", LABELLED_PAIRS)
    judgments = read_parquet(prepared / "judgments.parquet")
    train = judgments[~judgments["query_id"].isin(golden["query_id"])]  # never a held-out query
    modes = instantiate_modes(ic.modes)
    scorer = load_scorer(
        ic.scorer, labels=cfg.taxonomy.ids, query_text=dict(zip(queries["query_id"], queries["text"])),
        models_dir=cfg.paths.models, student_name=cfg.student.name,
    )  # fmt: skip
    log = run_simulation(
        queries=queries, listings=listings, held_out=golden, train=train, scorer=scorer, modes=modes,
        gains=cfg.taxonomy.gains, k=ic.k, retrieve_k=ic.retrieve_k, bm25_weight=ic.baseline.bm25_weight,
        popularity_weight=ic.baseline.popularity_weight, ranker_params=ic.ranker, seed=cfg.seed,
    )  # fmt: skip
    ab = ic.abtest
    report = integration_report(
        log, cfg.taxonomy.gains, ic.k, label_source="human (golden set)", scorer_tier=scorer.tier,
        unjudged=ic.unjudged, n_resamples=ab.bootstrap_resamples, confidence=ab.confidence,
        seed=cfg.seed, detect=ab.detect, ranker_arms=ranker_arms(modes),
    )  # fmt: skip

    write_parquet(log, Path(cfg.paths.predictions) / "integration" / "results.parquet")
    write_json(report, Path(cfg.paths.metrics) / "integration.json")
    write_text(render_markdown(report), Path(cfg.paths.reports) / "integration.md")
    rows = effect_rows(report)
    write_csv(rows, Path(cfg.paths.plots) / "integration" / "effects.csv")
    plot_effects(rows, Path(cfg.paths.plots) / "integration" / "effects.png", ic.k)
    print(render_markdown(report))


if __name__ == "__main__":
    run_stage(main)

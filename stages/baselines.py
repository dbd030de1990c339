"""DVC stage `baselines`: the honest floors every tier must beat, fitted on the annotator's
labels of the annotate pool and predicted on the golden pairs."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.baselines import make_baseline
from relevance_kit.io import read_parquet, write_parquet
from relevance_kit.schemas import LABELLED_PAIRS, read_frame
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    train = read_parquet(Path(cfg.paths.annotations) / "judgments.parquet")
    golden = read_frame(Path(cfg.paths.golden) / "golden.parquet", LABELLED_PAIRS)
    out = Path(cfg.paths.predictions) / "baselines"
    options = {"ltr_gbdt": {**cfg.evaluation.ltr_gbdt.model_dump(), "seed": cfg.seed}}
    for name in cfg.evaluation.baselines:
        baseline = make_baseline(name, queries, listings, **options.get(name, {})).fit(
            train, cfg.taxonomy.ids
        )
        write_parquet(baseline.predict(golden[["query_id", "listing_id"]]), out / f"{name}.parquet")
        print(
            f"baseline {name}: fitted on {len(train)} pairs, predicted {len(golden)} golden pairs"
        )


if __name__ == "__main__":
    run_stage(main)

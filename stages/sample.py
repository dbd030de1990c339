"""DVC stage `sample`: query-level splits, the annotate-pool sample (stratified + hard
cases), the teacher pool, and a BM25-retrieved unlabeled pool from the whole catalogue."""

from pathlib import Path

import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.lexical import CatalogBM25
from relevance_kit.sampling import (
    combine_samples,
    first_queries,
    golden_pool,
    pair_features,
    retrieve_candidates,
    sampling_report,
    split_queries,
    stratified_sample,
    targeted_sample,
)
from relevance_kit.schemas import PAIR_KEY
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    prepared = Path(cfg.paths.prepared)
    listings = read_parquet(prepared / "listings.parquet")
    queries = read_parquet(prepared / "queries.parquet")
    judgments = read_parquet(prepared / "judgments.parquet")
    s = cfg.sampling

    splits = split_queries(
        queries, judgments, listings, s.splits, cfg.seed, s.query_strata, s.max_queries
    )
    # One row per pair: with several annotators per pair, the first judgment's label stands for
    # the pair in strata and targeted rules (the golden stage aggregates them properly).
    judged = judgments.drop_duplicates(PAIR_KEY)[PAIR_KEY + ["label"]]
    judged = judged.assign(gain=judged["label"].map(cfg.taxonomy.gains))
    in_split = {
        name: judged[judged["query_id"].isin(splits.loc[splits["split"] == name, "query_id"])]
        for name in ("annotate", "teacher")
    }
    bm25 = CatalogBM25(listings)
    golden = golden_pool(judged, splits, s.golden.max_pairs_per_query, cfg.seed)

    # Strata and rules may use the human label (this dataset has one); the pool written out
    # has no label, so nothing downstream can read a human label through it.
    annotate_split = first_queries(in_split["annotate"], s.annotate.max_queries, cfg.seed)
    features = pair_features(annotate_split, queries, listings, bm25)
    annotate = combine_samples(
        targeted_sample(features, s.annotate.targeted, cfg.seed),
        stratified_sample(features, s.annotate.strata, s.annotate.max_pairs, cfg.seed),
    ).drop(columns=["label", "gain"])
    teacher = pair_features(in_split["teacher"], queries, listings, bm25).drop(
        columns=["label", "gain"]
    )
    unlabeled_queries = splits.loc[splits["split"] == "unlabeled", "query_id"].tolist()
    unlabeled = retrieve_candidates(unlabeled_queries, queries, bm25, s.unlabeled.top_k)

    pools = {
        "golden": golden[PAIR_KEY],
        "annotate": annotate,
        "teacher": teacher,
        "unlabeled": unlabeled,
    }
    out = Path(cfg.paths.splits)
    write_parquet(splits, out / "query_splits.parquet")
    for name, frame in pools.items():
        write_parquet(
            frame.sort_values(PAIR_KEY).reset_index(drop=True), out / f"{name}_pool.parquet"
        )
    report = sampling_report(splits, pools, s.annotate.targeted)
    write_json(report, Path(cfg.paths.metrics) / "sampling.json")
    print(pd.Series({name: len(frame) for name, frame in pools.items()}, name="pairs").to_string())


if __name__ == "__main__":
    run_stage(main)

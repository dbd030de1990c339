"""DVC stage `prepare`: verify the raw dataset and write validated parquet."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.data.prepare import prepare_dataset
from relevance_kit.io import write_json, write_parquet
from relevance_kit.schemas import LISTING_SCHEMA, PREPARED_JUDGMENT_SCHEMA, QUERY_SCHEMA
from relevance_kit.stage import run_stage


def main(cfg: RelevanceConfig) -> None:
    prepared = prepare_dataset(cfg)
    out = Path(cfg.paths.prepared)
    write_parquet(prepared.listings, out / "listings.parquet", LISTING_SCHEMA)
    write_parquet(prepared.queries, out / "queries.parquet", QUERY_SCHEMA)
    write_parquet(prepared.judgments, out / "judgments.parquet", PREPARED_JUDGMENT_SCHEMA)
    write_parquet(prepared.quarantine, out / "quarantine.parquet")
    write_json(prepared.report, Path(cfg.paths.metrics) / "prepare.json")
    print(f"prepared {prepared.report}")


if __name__ == "__main__":
    run_stage(main)

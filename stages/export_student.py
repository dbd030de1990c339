"""DVC stage `export_student`: ONNX query encoder (fp32 and int8), listing index for the
whole catalogue, parity against the trained model, and the student's golden predictions
through the exported scorer."""

from pathlib import Path

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.schemas import LABELLED_PAIRS, read_frame
from relevance_kit.stage import run_stage
from relevance_kit.student.export import export_student
from relevance_kit.student.parity import parity_report
from relevance_kit.student.predict import predict_pairs
from relevance_kit.student.scorer import RelevanceScorer


def main(cfg: RelevanceConfig) -> None:
    prepared = Path(cfg.paths.prepared)
    listings = read_parquet(prepared / "listings.parquet")
    queries = read_parquet(prepared / "queries.parquet")
    golden = read_frame(Path(cfg.paths.golden) / "golden.parquet", LABELLED_PAIRS)
    model_dir = Path(cfg.paths.models) / "student" / cfg.student.name
    export_dir = model_dir / "export"
    manifest = export_student(model_dir / "student.ckpt", listings, export_dir, cfg.student)

    scorers = {
        v: RelevanceScorer.load(export_dir, v, threads=cfg.student.service.threads)
        for v in ("fp32", "int8")
    }
    query_text = dict(zip(queries["query_id"], queries["text"]))
    predictions = predict_pairs(scorers[manifest["serve"]], golden, query_text, cfg.taxonomy.gains)
    write_parquet(predictions, Path(cfg.paths.predictions) / "student.parquet")
    # fp32: is the export exact? int8: what quantization costs
    parity = {
        v: parity_report(model_dir / "student.ckpt", s, golden, query_text, listings, cfg.student)
        for v, s in scorers.items()
    }
    write_json(
        {
            "version": manifest["version"],
            "n_listings": manifest["n_listings"],
            "served": manifest["serve"],
            "parity": parity,
        },
        Path(cfg.paths.metrics) / "export_student.json",
    )
    print(
        f"student export {manifest['version']}: {manifest['n_listings']} listings indexed; parity {parity}"
    )


if __name__ == "__main__":
    run_stage(main)

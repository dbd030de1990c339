"""Annotator benchmark against llama.cpp's server with the packaged SmolLM2 (local_llm's
annotator): pairs/s at concurrency 1 vs 8 (same pairs, separate fresh caches), the time of a
re-run served entirely from the cache, and tokens and cost per 1,000 pairs (cost at the
configured local price and, for scale, at o3's configured prices).

    python -m relevance_kit.bench.annotator [--pairs 12] [--out metrics/bench_annotator.json]

Run from the project root after `dvc repro golden` (it reads golden pairs and conf/).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from relevance_kit.annotate.run import annotate_pairs, join_text, load_shots, open_annotator
from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.io import read_parquet, write_json


def bench(pairs_n: int, out: Path) -> dict[str, Any]:
    cfg = _config()
    queries = read_parquet(Path(cfg.paths.prepared) / "queries.parquet")
    listings = read_parquet(Path(cfg.paths.prepared) / "listings.parquet")
    golden = read_parquet(Path(cfg.paths.golden) / "golden.parquet").head(pairs_n)
    pairs = join_text(golden, queries, listings, "golden")
    shots = load_shots(cfg, queries, listings)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for concurrency in (1, 8):
            run_cfg = _with(cfg, max_concurrency=concurrency, cache_path=f"{tmp}/c{concurrency}.sqlite")
            runs[concurrency] = _timed(run_cfg, shots, pairs)
        rerun = _timed(_with(cfg, max_concurrency=8, cache_path=f"{tmp}/c8.sqlite"), shots, pairs)
    o3 = validate(yaml.safe_load(compose(["experiment=local_llm", "annotator=o3"])))
    usage = runs[1]["usage"]
    per_1000 = 1000 / len(pairs)
    prompt_t, completion_t = usage["prompt_tokens"] * per_1000, usage["completion_tokens"] * per_1000
    o3_prices = o3.annotator.price_per_million_tokens or {"input": 0.0, "output": 0.0}
    result = {
        "model": f"{cfg.annotator.model} (llama.cpp server, {cfg.annotator.serve.gguf if cfg.annotator.serve else ''})",
        "pairs": len(pairs),
        "samples_per_pair": cfg.annotator.samples,
        "pairs_per_s_concurrency_1": len(pairs) / runs[1]["seconds"],
        "pairs_per_s_concurrency_8": len(pairs) / runs[8]["seconds"],
        "speedup_8_vs_1": runs[1]["seconds"] / runs[8]["seconds"],
        "cache_hit_rerun_s": rerun["seconds"],
        "cache_hit_rerun_requests": rerun["usage"]["requests"],
        "first_run_s": runs[8]["seconds"],
        "rerun_speedup": runs[8]["seconds"] / rerun["seconds"],
        "prompt_tokens_per_1000_pairs": prompt_t,
        "completion_tokens_per_1000_pairs": completion_t,
        "cost_usd_per_1000_pairs": usage["cost_usd"] * per_1000,
        "cost_usd_per_1000_pairs_at_o3_prices": (prompt_t * o3_prices["input"] + completion_t * o3_prices["output"]) / 1e6,
    }
    write_json(result, out)
    return result


def _config() -> RelevanceConfig:
    return validate(yaml.safe_load(compose(["experiment=local_llm"])))


def _with(cfg: RelevanceConfig, **annotator: Any) -> RelevanceConfig:
    return cfg.model_copy(update={"annotator": cfg.annotator.model_copy(update=annotator)})


def _timed(cfg: RelevanceConfig, shots: list, pairs) -> dict[str, Any]:
    """Time only the annotation (the server is already up when the clock starts)."""
    with open_annotator(cfg, shots) as annotator:
        start = time.perf_counter()
        annotate_pairs(annotator, pairs, desc=f"concurrency {cfg.annotator.max_concurrency}")
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "usage": annotator.request.meter.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_annotator.json"))
    args = parser.parse_args()
    for key, value in bench(args.pairs, args.out).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

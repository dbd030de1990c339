"""Run the annotator graph over many pairs: open the backend (starting a local llama.cpp
server when the config says `serve`), few shots from the annotate pool, async fan-out with a
progress bar, and the outputs: judgments, predictions and the human review queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.asyncio import tqdm

from relevance_kit.annotate.cache import ResponseCache
from relevance_kit.annotate.client import (
    ChatBackend,
    HFLocalBackend,
    Meter,
    OpenAIBackend,
    Requester,
)
from relevance_kit.annotate.few_shot import choose_shots
from relevance_kit.annotate.graph import Annotator, build_graph
from relevance_kit.annotate.llama_server import packaged_smollm2_gguf, serve_llama_cpp
from relevance_kit.config import RelevanceConfig
from relevance_kit.errors import DataError, RelevanceKitError
from relevance_kit.golden import export_label_studio_tasks, export_review_csv
from relevance_kit.io import read_parquet
from relevance_kit.prompts import Shot
from relevance_kit.schemas import PAIR_KEY, prediction_frame

LISTING_FIELDS = (
    "title",
    "description",
    "bullet_points",
    "attributes",
    "variations",
    "category",
    "brand",
    "color",
    "entities",
)


@contextlib.contextmanager
def open_annotator(cfg: RelevanceConfig, shots: Sequence[Shot]) -> Iterator[Annotator]:
    """The configured annotator, ready to run; the server (if any) and the cache are closed
    when the block ends."""
    a = cfg.annotator
    with contextlib.ExitStack() as stack:
        base_url = a.base_url
        if a.serve is not None:
            gguf = (
                packaged_smollm2_gguf()
                if a.serve.gguf == "packaged_smollm2"
                else Path(a.serve.gguf)
            )
            log = Path(a.cache_path).with_name(f"{a.name}_server.log")
            base_url = stack.enter_context(serve_llama_cpp(
                gguf, log, model=str(a.model), n_ctx=a.serve.n_ctx, prompt_cache_bytes=a.serve.prompt_cache_bytes
            )).base_url  # fmt: skip
        backend: ChatBackend = (
            HFLocalBackend(a) if a.backend == "hf_local" else OpenAIBackend(a, str(base_url))
        )
        cache = ResponseCache(a.cache_path)
        stack.callback(cache.close)
        meter = Meter(a.price_per_million_tokens, a.budget_usd)
        requester = Requester(backend, cache, meter, a.max_concurrency)
        yield Annotator(
            a, cfg.prompt, cfg.taxonomy, cfg.guidelines.current, tuple(shots), requester, cfg.seed
        )


def annotate_pairs(
    annotator: Annotator, pairs: pd.DataFrame, desc: str = "annotating"
) -> pd.DataFrame:
    """One result row per pair (same order): label (None when unresolved), rationale,
    self_consistency, votes, shares, invalid answers, route. Stops with the first fatal
    error (auth, budget) after in-flight requests finish; their answers stay cached."""
    return asyncio.run(_annotate(annotator, pairs, desc))


async def _annotate(annotator: Annotator, pairs: pd.DataFrame, desc: str) -> pd.DataFrame:
    graph = build_graph(annotator)
    annotator.request.start_run()
    in_flight = asyncio.Semaphore(2 * annotator.cfg.max_concurrency)  # pairs open at once
    bar = tqdm(total=len(pairs), desc=desc, unit="pair")

    async def one(pair: dict[str, Any]) -> dict[str, Any]:
        async with in_flight:
            annotator.request.meter.check()
            state = await graph.ainvoke({"pair": pair})
            bar.update()
            return state["result"]

    try:
        results = await asyncio.gather(
            *(one(p) for p in pair_inputs(pairs)), return_exceptions=True
        )
    finally:
        bar.close()
        await annotator.request.backend.close()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        fatal = next((e for e in failed if isinstance(e, RelevanceKitError)), None)
        done = len(results) - len(failed)
        raise (type(fatal) if fatal else RelevanceKitError)(
            f"{fatal or failed[0]!s} ({done}/{len(results)} pairs finished, {len(failed)} not; "
            f"answers are cached in {annotator.cfg.cache_path}: re-running pays only for the rest)"
        ) from (fatal.__cause__ if fatal else failed[0])
    return pd.DataFrame(results)


def pair_inputs(pairs: pd.DataFrame) -> list[dict[str, Any]]:
    """Graph inputs: query text, listing fields and image locations of each pair."""
    require = [*PAIR_KEY, "query", "title"]
    missing = [c for c in require if c not in pairs]
    if missing:
        raise DataError(f"pairs to annotate lack column(s) {missing}")
    rows = []
    for row in pairs.to_dict("records"):
        listing = {f: row.get(f) for f in LISTING_FIELDS}
        images = [str(u) for u in _as_list(row.get("image_urls"))]
        rows.append(
            {
                **{k: row[k] for k in PAIR_KEY},
                "query": row["query"],
                "listing": listing,
                "images": images,
            }
        )
    return rows


def join_text(
    pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame, where: str
) -> pd.DataFrame:
    """Pairs with their query text and listing fields; a pair whose query or listing is
    missing is an error naming it."""
    out = pairs[PAIR_KEY].merge(
        queries.rename(columns={"text": "query"})[["query_id", "query"]], on="query_id", how="left"
    )
    out = out.merge(listings, on="listing_id", how="left")
    bad = out[out["query"].isna() | out["title"].isna()]
    if len(bad):
        raise DataError(
            f"{where}: {len(bad)} pair(s) without query text or listing, e.g. {bad[PAIR_KEY].head(3).to_dict('records')}"
        )
    return out


def predictions(pairs: pd.DataFrame, results: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """The prediction contract (score = self-consistency, p_<label> = vote shares) plus a
    `self_consistency` column and the route, for the golden pairs."""
    shares = {label: [s[label] for s in results["shares"]] for label in labels}
    frame = prediction_frame(
        pairs, results["label"].tolist(), results["self_consistency"].to_numpy(), shares
    )
    frame["self_consistency"] = results["self_consistency"].to_numpy(dtype=np.float64)
    frame["route"] = results["route"].to_numpy()
    return frame


def export_review_queue(
    pairs: pd.DataFrame, results: pd.DataFrame, folder: Path, cfg: RelevanceConfig
) -> int:
    """Pairs routed to review, as the golden stage's review files (CSV + Label Studio tasks),
    the annotator's label (if any) shown as a pre-annotation. Returns how many."""
    routed = results["route"].to_numpy() == "review"
    queue = pairs[routed].assign(
        current_label=results.loc[routed, "label"].to_numpy(),
        votes=results.loc[routed, "votes"].to_numpy(),
    )
    ids, display = cfg.taxonomy.ids, cfg.taxonomy.display
    export_review_csv(queue, folder / "review.csv", ids, display)
    export_label_studio_tasks(
        queue,
        folder / "label_studio_tasks.json",
        ids,
        display,
        model_version=f"annotator:{cfg.annotator.name}",
    )
    return int(routed.sum())


def pool_subset(pool: pd.DataFrame, max_pairs: int | None, seed: int) -> pd.DataFrame:
    """At most `max_pairs` pool pairs (a seeded sample, pool order kept): caps a demo's cost."""
    if max_pairs is None or len(pool) <= max_pairs:
        return pool
    return pool.sample(n=max_pairs, random_state=seed).sort_index()


def llm_judgments(results: pd.DataFrame, cfg: RelevanceConfig) -> pd.DataFrame:
    """Accepted results as judgment rows (source llm, confidence = self-consistency);
    pairs routed to review are left to the humans."""
    accepted = results[results["route"] == "accept"]
    return pd.DataFrame(
        {
            "query_id": accepted["query_id"],
            "listing_id": accepted["listing_id"],
            "annotator_id": cfg.annotator.name,
            "label": accepted["label"],
            "source_label": accepted["votes"],
            "rationale": accepted["rationale"],
            "confidence": accepted["self_consistency"].astype(float),
            "source": "llm",
            "guideline_version": cfg.guidelines.current.version,
            "created_at": pd.Timestamp.now(tz="UTC"),
        }
    ).reset_index(drop=True)


def load_shots(cfg: RelevanceConfig, queries: pd.DataFrame, listings: pd.DataFrame) -> list[Shot]:
    """Few shots from the annotate pool's human labels (never golden)."""
    splits, prepared = Path(cfg.paths.splits), Path(cfg.paths.prepared)
    pool = join_text(
        read_parquet(splits / "annotate_pool.parquet"), queries, listings, "annotate pool"
    )
    golden_queries = set(read_parquet(splits / "golden_pool.parquet")["query_id"])
    return choose_shots(cfg, pool, read_parquet(prepared / "judgments.parquet"), golden_queries)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value)

"""Bulk teacher labelling as a Ray Data job over Parquet shards (`inference=ray`).

The pairs are cut into input shards of `inference.ray.shard_rows` rows under the job folder;
a Ray Data pipeline over the shards that have no output yet labels them on an actor pool: each actor loads the teacher once (engine `hf`: the cross-encoder or HF scorer, on CPU
here), or, on a GPU cluster, `ray.data.llm`'s vLLM processor does (engine `vllm`). The driver
writes each shard's output (`out/`) and its failed rows with the error (`failed/`) atomically
as soon as all of the shard's rows are back, so a killed job rerun skips every finished
shard, and a row that cannot be scored is recorded instead of stopping the job.

Pointing it at a cluster: `inference.ray.address: auto` (on a cluster node) or
`ray://<head>:10001`; the job folder and the teacher's export must be on storage the
workers see (a shared file system), and relevance-kit is shipped to them as a py_module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from relevance_kit.config import RayLabelling, RelevanceConfig
from relevance_kit.errors import ConfigError, DataError
from relevance_kit.io import read_parquet, write_json, write_parquet
from relevance_kit.schemas import LISTING_SCHEMA, PAIR_KEY, prob_column


@dataclass(frozen=True)
class LabelRun:
    probs: np.ndarray  # (n, K) in the order of the pairs; NaN rows for failed pairs
    failed: pd.DataFrame  # shard, row, query_id, listing_id, error
    shards_total: int
    shards_skipped: int  # finished before this run: not redone
    shards_labelled: int


def label_pairs(
    cfg: RelevanceConfig, export_dir: Path, pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame,
    work_dir: Path, *, raise_on_failed: bool = False,
) -> LabelRun:  # fmt: skip
    """Label (query_id, listing_id) pairs with the teacher's export as a resumable Ray job."""
    rc = _ray_settings(cfg)
    labels = cfg.taxonomy.ids
    shards = _prepare_job(pairs, queries, listings, work_dir, rc.shard_rows, export_dir)
    pending = [s for s in shards if not (work_dir / "out" / s).exists()]
    if pending:
        _run(cfg, rc, export_dir, work_dir, pending)
    outputs = pd.concat([read_parquet(work_dir / "out" / s) for s in shards], ignore_index=True)
    failed = pd.concat([read_parquet(work_dir / "failed" / s) for s in shards], ignore_index=True)
    ordered = outputs.sort_values(["shard", "row"]).reset_index(drop=True)
    probs = ordered[[prob_column(label) for label in labels]].to_numpy(dtype=np.float64)
    if raise_on_failed and len(failed):
        first = failed.iloc[0]
        raise DataError(
            f"{len(failed)} of {len(pairs)} pairs failed to label (recorded in {work_dir / 'failed'}); "
            f"first: {first['query_id']!r} / {first['listing_id']!r}: {first['error']}"
        )
    return LabelRun(probs, failed, len(shards), len(shards) - len(pending), len(pending))


def _ray_settings(cfg: RelevanceConfig) -> RayLabelling:
    if cfg.inference.ray is None:
        raise ConfigError("Ray labelling needs inference.ray (use inference=ray)")
    return cfg.inference.ray


def _prepare_job(
    pairs: pd.DataFrame,
    queries: pd.DataFrame,
    listings: pd.DataFrame,
    work_dir: Path,
    shard_rows: int,
    export_dir: Path,
) -> list[str]:
    """Write the input shards and the catalogue once per job; a job folder holding another
    set of pairs (or another model) is started afresh. Returns the shard file names."""
    rows = pairs[PAIR_KEY].reset_index(drop=True)
    text = dict(zip(queries["query_id"], queries["text"]))
    rows["query"] = rows["query_id"].map(text)
    digest = hashlib.sha256(pd.util.hash_pandas_object(rows, index=True).to_numpy().tobytes())
    digest.update(str(export_dir.resolve()).encode())
    manifest = {"pairs": len(rows), "shard_rows": shard_rows, "digest": digest.hexdigest()}
    manifest_path = work_dir / "manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text()) != manifest:
        shutil.rmtree(work_dir)
    names = [f"shard-{i:05d}.parquet" for i in range(max(1, -(-len(rows) // shard_rows)))]
    if not manifest_path.exists():
        for i, name in enumerate(names):
            part = rows.iloc[i * shard_rows : (i + 1) * shard_rows]
            write_parquet(
                part.assign(shard=name, row=np.arange(len(part)) + i * shard_rows),
                work_dir / "in" / name,
            )
        # typed by the listing contract: a column of empty dicts (no entities) has no type to infer
        known = pa.schema([field for field in LISTING_SCHEMA if field.name in listings.columns])
        write_parquet(listings, work_dir / "listings.parquet", known)
        write_json(manifest, manifest_path)
    return names


class HFShardLabeller:
    """A Ray actor: loads the teacher once, labels batches of pairs; a batch that fails is
    retried row by row, and the rows that still fail carry their error."""

    def __init__(self, cfg: RelevanceConfig, export_dir: str, listings_path: str) -> None:
        from relevance_kit.teacher.scoring import make_scorer

        self.scorer = make_scorer(
            cfg, Path(export_dir), cfg.inference.model_copy(update={"backend": "hf"})
        )
        self.listings = read_parquet(listings_path)
        self.labels = cfg.taxonomy.ids

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        try:
            probs, errors = self._score(batch), [None] * len(batch)
        except Exception:  # noqa: BLE001 - recorded per row below, never swallowed
            rows = [self._one(batch.iloc[[i]]) for i in range(len(batch))]
            probs = np.stack([p for p, _ in rows])
            errors = [e for _, e in rows]
        out = batch[["shard", "row", *PAIR_KEY]].reset_index(drop=True)
        for j, label in enumerate(self.labels):
            out[prob_column(label)] = probs[:, j]
        out["error"] = errors
        return out

    def _score(self, batch: pd.DataFrame) -> np.ndarray:
        from relevance_kit.teacher.scoring import score_frame

        queries = (
            batch[["query_id", "query"]]
            .drop_duplicates("query_id")
            .rename(columns={"query": "text"})
        )
        return score_frame(
            self.scorer, batch, queries, self.listings, f"shard {batch['shard'].iloc[0]}"
        )

    def _one(self, row: pd.DataFrame) -> tuple[np.ndarray, str | None]:
        try:
            return self._score(row)[0], None
        except Exception as exc:  # noqa: BLE001 - the row's failure is its result
            return np.full(len(self.labels), np.nan), f"{type(exc).__name__}: {exc}"


def _run(
    cfg: RelevanceConfig, rc: RayLabelling, export_dir: Path, work_dir: Path, pending: list[str]
) -> None:
    """Label the pending shards; write each one's output as soon as all its rows are in."""
    ray = _init_ray(rc)
    # The input shards hold only pair keys (small): the driver reads them into one block per
    # shard, so no read task competes with the actors for CPUs (with every CPU held by an
    # actor, Ray Data's read tasks would never be scheduled).
    frames = [read_parquet(work_dir / "in" / s) for s in pending]
    sizes = dict(zip(pending, map(len, frames)))
    ds = ray.data.from_pandas(frames)
    if rc.engine == "vllm":
        ds = _vllm_pipeline(cfg, rc, export_dir, work_dir, ds)
    else:
        ds = ds.map_batches(
            HFShardLabeller, fn_constructor_kwargs={"cfg": cfg, "export_dir": str(export_dir), "listings_path": str(work_dir / "listings.parquet")},
            batch_size=cfg.inference.batch_size, batch_format="pandas", concurrency=rc.actors,
            num_cpus=rc.cpus_per_actor, num_gpus=rc.gpus_per_actor,
        )  # fmt: skip
    buffers: dict[str, list[pd.DataFrame]] = {}
    for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
        for shard, part in batch.groupby("shard", sort=False):
            buffers.setdefault(shard, []).append(part)
            if sum(len(p) for p in buffers[shard]) == sizes[shard]:
                _write_shard(work_dir, shard, pd.concat(buffers.pop(shard), ignore_index=True))
    if buffers:
        raise DataError(
            f"Ray labelling: shards {sorted(buffers)} came back incomplete; rerun to finish them"
        )


def _write_shard(work_dir: Path, shard: str, rows: pd.DataFrame) -> None:
    """Failed rows first, then the output: the output's presence marks the shard finished."""
    failed = rows["error"].notna()
    write_parquet(
        rows.loc[failed, ["shard", "row", *PAIR_KEY, "error"]].reset_index(drop=True),
        work_dir / "failed" / shard,
    )
    write_parquet(
        rows.drop(columns="error").sort_values("row").reset_index(drop=True),
        work_dir / "out" / shard,
    )


def _init_ray(rc: RayLabelling) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("inference=ray needs Ray Data: pip install 'ray[data]'") from exc
    if not ray.is_initialized():
        if rc.address:
            import relevance_kit

            ray.init(
                address=rc.address,
                runtime_env={"py_modules": [str(Path(relevance_kit.__file__).parent)]},
            )
        else:
            start_local_ray(rc.num_cpus)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def start_local_ray(num_cpus: int | None, attempts: int = 3) -> None:
    """A local Ray instance. On a loaded machine Ray's agents start slowly: the raylet's wait
    for them is lengthened (RAY_agent_register_timeout_ms, unless set), and a start that
    still timed out (the raylet's own 30 s to register) is retried."""
    import os

    import ray

    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    for attempt in range(attempts):
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception as exc:  # ray raises a bare Exception for this
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == attempts - 1:
                raise


def _vllm_pipeline(
    cfg: RelevanceConfig, rc: RayLabelling, export_dir: Path, work_dir: Path, ds: Any
) -> Any:
    """GPU clusters: ray.data.llm's vLLM processor over the teacher's export, with the same
    forced-choice scheme as VLLMScorer (K one-token requests per pair, each forcing one label
    token; the raw logprobs softmaxed over the K labels). UNTESTED here (no GPU, no vllm):
    written against ray.data.llm's vLLMEngineProcessorConfig / build_processor (Ray 2.60).
    The prompt is rendered here (chat template included), so the processor only tokenizes;
    a row the engine fails on carries `__inference_error__` and is recorded as failed."""
    try:
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    except ImportError as exc:
        raise ConfigError(
            "engine 'vllm' needs ray.data.llm and vllm (pip install 'ray[data,llm]' on a GPU cluster)"
        ) from exc
    from transformers import AutoTokenizer

    from relevance_kit.teacher.encoding import PromptRenderer, verbalizer_ids
    from relevance_kit.teacher.kinds import teacher_kind
    from relevance_kit.teacher.scoring import LOGIT_LIFT

    if not teacher_kind(cfg.teacher).generative:
        raise ConfigError(
            "engine 'vllm' serves generative teachers; a cross-encoder teacher uses engine: hf"
        )
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    renderer = PromptRenderer(cfg, tokenizer)
    token_ids = [
        ids[0] for ids in verbalizer_ids(tokenizer, cfg.taxonomy.ids, cfg.teacher.verbalizers)
    ]
    listings = read_parquet(work_dir / "listings.parquet").set_index("listing_id")

    def prompts(batch: pd.DataFrame) -> pd.DataFrame:
        from relevance_kit.teacher.encoding import Pair

        texts = [
            renderer.text(Pair(q, listings.loc[lid].to_dict()))
            for q, lid in zip(batch["query"], batch["listing_id"])
        ]
        expanded = batch.loc[batch.index.repeat(len(token_ids))].reset_index(drop=True)
        expanded["prompt"] = np.repeat(texts, len(token_ids))
        expanded["label_token"] = np.tile(token_ids, len(batch))
        return expanded

    config = vLLMEngineProcessorConfig(
        model_source=str(export_dir), concurrency=rc.actors, batch_size=cfg.inference.batch_size,
        engine_kwargs={"enable_prefix_caching": True, "tensor_parallel_size": cfg.inference.tensor_parallel_size, "max_logprobs": 1},
        chat_template_stage=False, tokenize_stage=True, detokenize_stage=False, should_continue_on_error=True,
    )  # fmt: skip
    processor = build_processor(
        config,
        preprocess=lambda row: {**row, "sampling_params": {"max_tokens": 1, "temperature": 0.0, "logprobs": 1, "logit_bias": {int(row["label_token"]): LOGIT_LIFT}}},
        postprocess=lambda row: {**{k: row[k] for k in ("shard", "row", "query_id", "listing_id", "label_token")}, "logprob": _forced_logprob(row)},
    )  # fmt: skip
    labelled = processor(ds.map_batches(prompts, batch_format="pandas"))
    labels = cfg.taxonomy.ids

    def per_pair(group: pd.DataFrame) -> pd.DataFrame:
        """One pair's K rows -> its probabilities, or its error."""
        logps = (
            group.set_index("label_token")["logprob"].reindex(token_ids).to_numpy(dtype=np.float64)
            if "logprob" in group
            else np.full(len(token_ids), np.nan)
        )
        errors = group.get("__inference_error__", pd.Series(dtype=object)).dropna().astype(str)
        out = group[["shard", "row", "query_id", "listing_id"]].head(1).reset_index(drop=True)
        probs = (
            np.exp(logps - np.nanmax(logps))
            if np.isfinite(logps).all()
            else np.full(len(token_ids), np.nan)
        )
        for j, label in enumerate(labels):
            out[prob_column(label)] = probs[j] / probs.sum()
        problem = "; ".join(e for e in errors if e) or (
            None
            if np.isfinite(logps).all()
            else "vLLM returned no logprob for a forced label token"
        )
        out["error"] = problem
        return out

    return labelled.groupby(["shard", "row"]).map_groups(per_pair, batch_format="pandas")


def _forced_logprob(row: dict) -> float:
    """The forced label token's logprob from the processor's output row (`logprobs`: one
    {token_id: {logprob, rank, decoded_token}} per generated token); NaN when it is not
    there (the pair is then recorded as failed)."""
    logprobs = row.get("logprobs") or []
    entry = (
        logprobs[0].get(int(row["label_token"]))
        if len(logprobs) and isinstance(logprobs[0], dict)
        else None
    )
    return float("nan") if entry is None else float(entry["logprob"])

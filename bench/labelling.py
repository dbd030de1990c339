"""Labelling benchmark (on demand, not in `dvc repro`): `python -m bench.labelling`.

Writes metrics/bench_labelling.json, every figure measured in the same run on the same pairs
and model: the MiniLM cross-encoder teacher (the packaged all-MiniLM-L6-v2 with a
classification head, exported to a temporary folder: the cpu_demo teacher's size and
speed) over the real ESCI sample (prepared in memory), the monitor's simulated request log:
- teacher pairs/s in process vs a Ray Data job with 1 and 2 CPU actors (local Ray, the
  machine's cores); the Ray figures include the actors' start and model load;
- the label store's hit rate on a second monitoring day over overlapping requests;
- the time of one monitoring day at 100 and 1,000 sampled requests, cold (every new pair
  scored by the teacher) and warm (every pair already in the store: the monitor's own cost).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.data.prepare import prepare_dataset
from relevance_kit.io import write_json
from relevance_kit.labelstore import LabelStore
from relevance_kit.monitor.log_format import read_request_log
from relevance_kit.monitor.run import simulated_log
from relevance_kit.monitor.series import day_summary
from relevance_kit.teacher.judgment import TeacherJudgment
from relevance_kit.teacher.models import export, load_teacher
from relevance_kit.teacher.pairs import StoredPairs, teacher_label_fn, teacher_version
from relevance_kit.teacher.ray_label import label_pairs, start_local_ray
from relevance_kit.teacher.scoring import make_scorer, score_frame


def timed(fn: object, *args: object, **kwargs: object) -> tuple[object, float]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)  # type: ignore[operator]
    return out, time.perf_counter() - started


def throughput(
    cfg: RelevanceConfig,
    teacher_dir: Path,
    pairs: pd.DataFrame,
    queries: pd.DataFrame,
    listings: pd.DataFrame,
    scratch: Path,
) -> dict:
    """pairs/s in process and as Ray jobs with 1 and 2 actors, on the same pairs."""
    scorer = make_scorer(cfg, teacher_dir / "export", cfg.inference)
    score_frame(scorer, pairs.head(8), queries, listings, "warm-up")
    _, seconds = timed(score_frame, scorer, pairs, queries, listings, "in process")
    out = {"pairs": len(pairs), "in_process_pairs_per_s": round(len(pairs) / seconds, 2)}
    import ray

    start_local_ray(os.cpu_count())
    try:
        for actors in (1, 2):
            ray_cfg = cfg.model_copy(update={"inference": cfg.inference.model_copy(update={
                "backend": "ray", "ray": cfg.inference.ray.model_copy(update={"actors": actors, "shard_rows": max(1, len(pairs) // 8)}),
            })})  # fmt: skip
            run, seconds = timed(
                label_pairs,
                ray_cfg,
                teacher_dir / "export",
                pairs,
                queries,
                listings,
                scratch / f"ray{actors}",
            )
            out[f"ray_{actors}_actors_pairs_per_s"] = round(len(pairs) / seconds, 2)
            out[f"ray_{actors}_actors_failed_rows"] = len(run.failed)
    finally:
        ray.shutdown()
    out["ray_2_vs_1_actors"] = round(
        out["ray_2_actors_pairs_per_s"] / out["ray_1_actors_pairs_per_s"], 3
    )
    out["ray_2_actors_vs_in_process"] = round(
        out["ray_2_actors_pairs_per_s"] / out["in_process_pairs_per_s"], 3
    )
    return out


def monitoring(
    cfg: RelevanceConfig,
    teacher_dir: Path,
    requests: pd.DataFrame,
    listings: pd.DataFrame,
    scratch: Path,
) -> dict:
    """Hit rate of day 2 after day 1, and one day's time at 100 and 1,000 requests."""
    version = teacher_version(cfg, teacher_dir)
    label_fn = teacher_label_fn(cfg, teacher_dir, scratch / "jobs")
    text = dict(zip(requests["query_id"], requests["query"]))
    gains, k = cfg.taxonomy.gains, cfg.monitoring.k

    def scorer(store: Path) -> StoredPairs:
        return StoredPairs(label_fn, LabelStore(store), version, cfg.taxonomy.ids, text, listings)

    days = sorted(requests["day"].unique())
    first, second = (requests[requests["day"] == d].head(100) for d in days[:2])
    day1 = scorer(scratch / "overlap.sqlite")
    day_summary(first, day1, gains, k)
    day2 = scorer(scratch / "overlap.sqlite")
    day_summary(second, day2, gains, k)
    out = {
        "second_day_requests": len(second), "second_day_hit_rate": round(day2.store.hit_rate, 4),
        "second_day_pairs_scored": day2.store.misses, "first_day_pairs_scored": day1.store.misses,
    }  # fmt: skip
    pool = requests.sample(n=1000, replace=len(requests) < 1000, random_state=0).assign(
        request_id=lambda f: [f"r{i}" for i in range(len(f))]
    )
    for n in (100, 1000):
        sampled = pool.head(n)
        store = scratch / f"day{n}.sqlite"
        cold = scorer(store)
        _, cold_s = timed(day_summary, sampled, cold, gains, k)
        _, warm_s = timed(day_summary, sampled, scorer(store), gains, k)
        out[f"day_{n}_requests_cold_s"] = round(cold_s, 2)
        out[f"day_{n}_requests_cold_pairs_scored"] = cold.store.misses
        out[f"day_{n}_requests_warm_s"] = round(warm_s, 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pairs", type=int, default=256, help="pairs for the throughput comparison"
    )
    parser.add_argument("--output", default="metrics/bench_labelling.json")
    args = parser.parse_args(argv)
    cfg = validate(
        yaml.safe_load(
            compose(["experiment=cpu_demo", "teacher=minilm_cross_encoder", "inference=ray"])
        )
    )
    cfg = cfg.model_copy(update={"inference": cfg.inference.model_copy(update={"backend": "hf"})})
    data = prepare_dataset(cfg)
    queries, listings = data.queries, data.listings
    requests = read_request_log(
        simulated_log(cfg, queries, listings, data.judgments), "simulated request log"
    )
    pairs = (
        data.judgments[["query_id", "listing_id"]]
        .drop_duplicates()
        .sample(n=args.pairs, random_state=0)
        .reset_index(drop=True)
    )
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        teacher_dir = scratch / "teacher"
        export(load_teacher(cfg.teacher, cfg.taxonomy.ids), teacher_dir / "export")
        head = cfg.teacher.combined_head
        TeacherJudgment.neutral(cfg.taxonomy.ids, head.features if head else None).save(teacher_dir)
        result = {
            "teacher": cfg.teacher.name, "cores": os.cpu_count(), "batch_size": cfg.inference.batch_size,
            "labelling": throughput(cfg, teacher_dir, pairs, queries, listings, scratch),
            "monitoring": monitoring(cfg, teacher_dir, requests, listings, scratch),
        }  # fmt: skip
    write_json(result, args.output)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

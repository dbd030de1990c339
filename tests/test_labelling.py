"""Bulk labelling: the label store's keys (model version, query, listing content), the teacher
behind it (nothing scored twice), and the Ray Data job on a real local Ray instance (2 CPUs):
same probabilities as in process, failed rows recorded, and a killed job rerun redoes no
finished shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.labelstore import LabelStore, content_hash
from relevance_kit.teacher.judgment import TeacherJudgment
from relevance_kit.teacher.models import export, load_teacher
from relevance_kit.teacher.pairs import StoredPairs, teacher_label_fn, teacher_version
from tests.conftest import REPO

LABELS = ["relevant", "partially_relevant", "irrelevant"]
PROBS = [f"p_{label}" for label in LABELS]


def make_cfg(*overrides: str) -> RelevanceConfig:
    return validate(
        yaml.safe_load(compose(["experiment=ci_tiny", *overrides], REPO / "conf")), REPO / "conf"
    )


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported tiny random teacher (a real model, untrained) with neutral biases."""
    out = tmp_path_factory.mktemp("teacher") / "tiny_random"
    export(load_teacher(make_cfg().teacher, LABELS), out / "export")
    head = make_cfg().teacher.combined_head
    TeacherJudgment.neutral(LABELS, head.features if head else None).save(out)
    return out


def catalogue(
    n_queries: int = 6, n_listings: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    words = ["red", "wool", "scarf", "garden", "hose", "mug", "blue", "lamp", "oak", "desk"]
    listings = pd.DataFrame({
        "listing_id": [f"l{i}" for i in range(n_listings)],
        "title": [f"{words[i % 10]} {words[(3 * i) % 10]} {i}" for i in range(n_listings)],
        "brand": None, "image_urls": [[] for _ in range(n_listings)],
    })  # fmt: skip
    queries = pd.DataFrame(
        {
            "query_id": [f"q{i}" for i in range(n_queries)],
            "text": [f"{words[i % 10]} {words[(i + 2) % 10]}" for i in range(n_queries)],
        }
    )
    pairs = pd.DataFrame(
        [(q, lid) for q in queries["query_id"] for lid in listings["listing_id"]],
        columns=["query_id", "listing_id"],
    )
    return queries, listings, pairs


def test_label_store_keys_on_version_query_and_content(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite")
    listing = {
        "listing_id": "l1",
        "title": "red mug",
        "attributes": {"color": "red"},
        "image_urls": np.array(["a.png"]),
    }
    key = ("red mug", content_hash(listing))
    store.put("teacher@v1", LABELS, [key], np.array([[0.7, 0.2, 0.1]]))
    store.put("teacher@v1", LABELS, [key], np.array([[0.1, 0.1, 0.8]]))  # kept: first write stands
    got = store.get("teacher@v1", ["irrelevant", "relevant", "partially_relevant"], [key])
    np.testing.assert_allclose(got[key], [0.1, 0.7, 0.2])  # returned in the asked label order
    assert (
        content_hash({**listing, "image_urls": ["a.png"]}) == key[1]
    )  # a Parquet round trip hashes the same
    assert content_hash({**listing, "listing_id": "l2"}) == key[1]  # the id is not content
    changed = ("red mug", content_hash({**listing, "title": "red mug, chipped"}))
    assert store.get("teacher@v1", LABELS, [changed]) == {}
    assert store.get("teacher@v2", LABELS, [key]) == {}
    assert store.get("teacher@v1", LABELS, [("blue mug", key[1])]) == {}
    assert (store.hits, store.misses) == (1, 3) and store.count() == 1


def test_teacher_through_the_store_scores_each_pair_once(teacher_dir: Path, tmp_path: Path) -> None:
    cfg = make_cfg()
    queries, listings, pairs = catalogue()
    real = teacher_label_fn(cfg, teacher_dir, tmp_path / "jobs")
    scored: list[int] = []

    def counting(
        p: pd.DataFrame, q: pd.DataFrame, ls: pd.DataFrame
    ) -> np.ndarray:  # a spy on the real scorer
        scored.append(len(p))
        return real(p, q, ls)

    text = dict(zip(queries["query_id"], queries["text"]))
    version = teacher_version(cfg, teacher_dir)
    scorer = StoredPairs(
        counting, LabelStore(tmp_path / "labels.sqlite"), version, LABELS, text, listings
    )
    first = scorer.score_pairs(
        pd.concat([pairs, pairs.head(5)])
    )  # repeats within a call: scored once
    assert scored == [len(pairs)]
    np.testing.assert_allclose(first[PROBS].sum(axis=1), 1.0)
    again = StoredPairs(
        counting, LabelStore(tmp_path / "labels.sqlite"), version, LABELS, text, listings
    )
    second = again.score_pairs(pairs.sample(frac=1.0, random_state=0))
    assert (
        scored == [len(pairs)] and again.store.hit_rate == 1.0
    )  # another day, another process: no scoring
    merged = second.merge(
        first.drop_duplicates(["query_id", "listing_id"]), on=["query_id", "listing_id"]
    )
    np.testing.assert_allclose(
        merged[[f"{c}_x" for c in PROBS]].to_numpy(), merged[[f"{c}_y" for c in PROBS]].to_numpy()
    )
    edited = listings.assign(
        title=listings["title"].where(listings["listing_id"] != "l3", "a new title")
    )
    StoredPairs(
        counting, LabelStore(tmp_path / "labels.sqlite"), version, LABELS, text, edited
    ).score_pairs(pairs)
    assert scored == [len(pairs), len(queries)]  # only the edited listing's pairs, once per query


def test_a_job_stores_a_catalogue_whose_entities_are_all_empty(tmp_path: Path) -> None:
    """A catalogue read in memory (not from prepare's parquet) whose listings have no
    entities holds a column of empty dicts, which pyarrow cannot type on its own (the
    labelling benchmark failed on it): the job writes the catalogue typed by the contract."""
    from relevance_kit.teacher.ray_label import _prepare_job

    queries, listings, pairs = catalogue(2, 4)
    listings = listings.assign(
        entities=[{} for _ in range(len(listings))], attributes=[{"color": "red"}] * len(listings)
    )
    shards = _prepare_job(pairs, queries, listings, tmp_path, 3, tmp_path / "export")
    stored = pd.read_parquet(tmp_path / "listings.parquet")
    assert len(shards) == 3 and stored["listing_id"].tolist() == listings["listing_id"].tolist()
    assert [list(e) for e in stored["entities"]] == [[]] * 4 and list(stored["attributes"][0]) == [
        ("color", "red")
    ]


@pytest.fixture(scope="module")
def local_ray() -> object:
    ray = pytest.importorskip("ray")
    from relevance_kit.teacher.ray_label import start_local_ray

    start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_job_matches_in_process_records_failures_and_skips_done_shards(
    local_ray: object, teacher_dir: Path, tmp_path: Path
) -> None:
    from relevance_kit.teacher.ray_label import label_pairs
    from relevance_kit.teacher.scoring import make_scorer, score_frame

    cfg = make_cfg(
        "inference=ray",
        "inference.ray.shard_rows=25",
        "inference.ray.actors=2",
        "inference.batch_size=8",
    )
    queries, listings, pairs = catalogue()
    # a real fault: a logged pair whose listing has left the catalogue
    with_gone = pd.concat(
        [pairs, pd.DataFrame({"query_id": ["q0"], "listing_id": ["deleted"]})], ignore_index=True
    )
    run = label_pairs(cfg, teacher_dir / "export", with_gone, queries, listings, tmp_path / "job")
    assert run.shards_total == 5 and run.shards_labelled == 5 and run.shards_skipped == 0
    assert run.failed[["query_id", "listing_id"]].values.tolist() == [["q0", "deleted"]]
    assert "deleted" in run.failed["error"].iloc[0]
    assert np.isnan(run.probs[-1]).all() and not np.isnan(run.probs[:-1]).any()
    direct = score_frame(
        make_scorer(
            cfg, teacher_dir / "export", cfg.inference.model_copy(update={"backend": "hf"})
        ),
        pairs,
        queries,
        listings,
        "direct",
    )
    np.testing.assert_allclose(run.probs[:-1], direct, atol=1e-5)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "job" / "out").iterdir()}
    rerun = label_pairs(cfg, teacher_dir / "export", with_gone, queries, listings, tmp_path / "job")
    assert (rerun.shards_skipped, rerun.shards_labelled) == (5, 0)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "job" / "out").iterdir()}


JOB = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.test_labelling import catalogue, make_cfg
    from relevance_kit.teacher.ray_label import label_pairs

    cfg = make_cfg("inference=ray", "inference.ray.shard_rows=8", "inference.ray.actors=1", "inference.ray.num_cpus=2", "inference.batch_size=8")
    queries, listings, pairs = catalogue(n_queries=10, n_listings=60)
    run = label_pairs(cfg, Path({export!r}), pairs, queries, listings, Path({job!r}))
    print("SKIPPED", run.shards_skipped, "LABELLED", run.shards_labelled, "TOTAL", run.shards_total, "NAN", int(pd.isna(run.probs).sum()))
    """
)


def finished_shards(out_dir: Path) -> dict[str, int]:
    """Written shards by name -> mtime; a shard being written when the job was killed is
    still a hidden temporary file (`.shard-*.tmp`), not a finished shard."""
    return {p.name: p.stat().st_mtime_ns for p in out_dir.glob("shard-*.parquet")}


@pytest.mark.slow
def test_killed_ray_job_rerun_redoes_no_finished_shard(teacher_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        JOB.format(repo=str(REPO), export=str(teacher_dir / "export"), job=str(tmp_path / "job"))
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    job = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out_dir = tmp_path / "job" / "out"
    deadline = time.monotonic() + 600  # a local Ray start is slow on 2 busy cores
    try:
        while (
            time.monotonic() < deadline
            and job.poll() is None
            and not (out_dir.exists() and len(finished_shards(out_dir)) >= 2)
        ):
            time.sleep(0.05)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)  # the job's whole session: driver and its local Ray
        job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL, (
        f"the job ended ({job.returncode}) before it could be killed: {job.stderr.read().decode()[-3000:]}"
    )
    assert out_dir.exists(), "the job wrote no shard within the deadline"
    done = finished_shards(out_dir)
    total = 75  # 600 pairs / 8
    assert 2 <= len(done) < total
    rerun = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    line = next(line for line in rerun.stdout.splitlines() if line.startswith("SKIPPED")).split()
    assert int(line[1]) == len(done) and int(line[3]) == total - len(done) and line[-1] == "0"
    after = finished_shards(out_dir)
    assert len(after) == total
    assert {name: after[name] for name in done} == done  # no finished shard was rewritten


@pytest.mark.slow
def test_monitor_and_abtest_stages_label_with_the_teacher_through_the_store(
    project, teacher_dir: Path
) -> None:
    import shutil

    from tests.conftest import run_stage

    root = project(edits={
        "monitoring.requests_per_day": 8, "monitoring.simulation.days": 7, "monitoring.simulation.requests_per_day": 20,
        "monitoring.simulation.regression_day": 5, "monitoring.abtest.requests_per_variant": 30, "monitoring.abtest.pre_requests": 30,
        "monitoring.abtest.bootstrap_resamples": 200, "monitoring.abtest.simulation.days": 2, "monitoring.abtest.simulation.pre_days": 2,
        "monitoring.abtest.simulation.requests_per_day": 40,
    })  # fmt: skip
    assert run_stage("prepare", root).returncode == 0
    shutil.copytree(teacher_dir, root / "models" / "teacher" / "tiny_random")
    first = run_stage("monitor", root)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((root / "metrics" / "monitoring.json").read_text())
    assert summary["tier"] == "teacher" and summary["days"] == 7
    store = LabelStore(root / "data" / "labels" / "label_store.sqlite")
    stored = store.count()
    assert stored > 0
    series = pd.read_parquet(root / "data" / "predictions" / "monitoring" / "series.parquet")
    assert run_stage("monitor", root).returncode == 0  # a rerun: every pair is in the store
    assert store.count() == stored
    pd.testing.assert_frame_equal(
        pd.read_parquet(root / "data" / "predictions" / "monitoring" / "series.parquet"), series
    )
    ab = run_stage("abtest", root)
    assert ab.returncode == 0, ab.stderr[-3000:]
    report = json.loads((root / "metrics" / "abtest.json").read_text())
    assert (
        report["label_source"] == "teacher"
        and report["cuped"]
        and set(report["variants"]) == {"control", "treatment"}
    )
    row = report["vs_control"]["treatment"]["pct_relevant"]
    assert row["low"] <= row["diff"] <= row["high"] and 0.0 <= row["p_value"] <= 1.0
    assert store.count() > stored  # the A/B pairs the monitor had not seen were added

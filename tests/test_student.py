"""Student tier: loss, targets, a tiny student learning a separable toy catalogue, export
parity, the listing index (every listing; refusing another model version), the scorer API
and the HTTP service (TestClient for error cases, one real uvicorn start for /healthz)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from relevance_kit.config import compose, validate
from relevance_kit.errors import ConfigError, DataError
from relevance_kit.student.data import NO_LABEL, load_targets, training_pairs
from relevance_kit.student.losses import distillation_loss
from tests.conftest import REPO

LABELS = ["relevant", "partially_relevant", "irrelevant"]
COLORS = ["red", "blue", "green", "black", "white"]
PRODUCTS = ["mug", "lamp", "sock"]
QUERY_TEXT = {f"q-{c}-{p}": f"{c} {p}" for c, p in itertools.product(COLORS, PRODUCTS)}


def tiny_cfg(*overrides: str):
    return validate(
        yaml.safe_load(compose(["experiment=ci_tiny", *overrides], REPO / "conf")), REPO / "conf"
    )


# --- loss and targets (fast) ---------------------------------------------------------------


def test_loss_is_kl_plus_ce_with_t_squared_scaling() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    hard = torch.tensor([0, NO_LABEL])
    ones = torch.ones(2)
    t = 2.0
    teacher = torch.softmax(soft.log() / t, -1)
    kl = (teacher * (teacher.log() - torch.log_softmax(logits / t, -1))).sum(-1) * t * t
    ce0 = torch.nn.functional.cross_entropy(logits[:1], hard[:1])
    got = distillation_loss(logits, soft, hard, ones, alpha=0.6, temperature=t)
    assert torch.isclose(got, (0.6 * kl.sum() + 0.4 * ce0) / 2)
    # a pair without a hard label adds only its KL term; weights rescale pairs
    only_kl = distillation_loss(logits[1:], soft[1:], hard[1:], ones[:1], alpha=0.6, temperature=t)
    assert torch.isclose(only_kl, 0.6 * kl[1])
    weighted = distillation_loss(
        logits, soft, hard, torch.tensor([3.0, 1.0]), alpha=0.6, temperature=t
    )
    assert torch.isclose(weighted, (3 * (0.6 * kl[0] + 0.4 * ce0) + 0.6 * kl[1]) / 4)


def test_targets_from_judgments_are_one_hot_averaged_per_pair(tmp_path: Path) -> None:
    judgments = pd.DataFrame(
        {
            "query_id": ["q1", "q1", "q2"],
            "listing_id": ["a", "a", "b"],
            "label": ["relevant", "irrelevant", "partially_relevant"],
        }
    )
    judgments.to_parquet(tmp_path / "j.parquet")
    targets = load_targets(tmp_path / "j.parquet", LABELS).set_index("listing_id")
    assert targets.loc["a", ["p_relevant", "p_partially_relevant", "p_irrelevant"]].tolist() == [
        0.5,
        0.0,
        0.5,
    ]
    assert targets.loc["b", "p_partially_relevant"] == 1.0
    pairs = training_pairs(
        tmp_path / "j.parquet", tmp_path / "j.parquet", LABELS, add_hard_labelled_pairs=True
    )
    assert dict(zip(pairs["listing_id"], pairs["hard_label"])) == {
        "a": 2,
        "b": 1,
    }  # tie -> more severe


def test_soft_labels_add_judged_pairs_and_reject_bad_rows(tmp_path: Path) -> None:
    soft = pd.DataFrame(
        {
            "query_id": ["q1"],
            "listing_id": ["x"],
            "p_relevant": [0.2],
            "p_partially_relevant": [0.5],
            "p_irrelevant": [0.3],
        }
    )
    soft.to_parquet(tmp_path / "soft.parquet")
    pd.DataFrame({"query_id": ["q2"], "listing_id": ["y"], "label": ["irrelevant"]}).to_parquet(
        tmp_path / "j.parquet"
    )
    pairs = training_pairs(
        tmp_path / "soft.parquet", tmp_path / "j.parquet", LABELS, add_hard_labelled_pairs=True
    ).set_index("listing_id")
    assert (
        pairs.loc["x", "hard_label"] == NO_LABEL and pairs.loc["x", "p_partially_relevant"] == 0.5
    )
    assert pairs.loc["y", "hard_label"] == 2 and pairs.loc["y", "p_irrelevant"] == 1.0
    soft.assign(p_irrelevant=0.9).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet: row 0 probabilities"):
        load_targets(tmp_path / "bad.parquet", LABELS)


def test_config_pins_class_weights_and_needs_hard_labels_for_ce() -> None:
    from relevance_kit.student.train import class_weights

    assert class_weights(tiny_cfg()) == [1.0, 1.0, 2.0]
    with pytest.raises(ConfigError, match="class_weights.etsy3"):
        class_weights(tiny_cfg("~student.loss.class_weights.etsy3"))
    with pytest.raises(ConfigError, match="hard_labels is null"):
        tiny_cfg("student.hard_labels=null")


# --- a tiny student on a separable toy catalogue -------------------------------------------


def toy_project(root: Path) -> None:
    """15 listings (color x product), 15 queries; relevant = same color and product,
    partially relevant = same product, irrelevant = another product. Golden: 3 queries."""
    listings = pd.DataFrame(
        [
            {
                "listing_id": f"L-{c}-{p}",
                "title": f"{c} {p}",
                "brand": "acme",
                "color": c,
                "category": ["home", p],
            }
            for c, p in itertools.product(COLORS, PRODUCTS)
        ]
    )
    queries = pd.DataFrame(
        [
            {"query_id": f"q-{c}-{p}", "text": f"{c} {p}"}
            for c, p in itertools.product(COLORS, PRODUCTS)
        ]
    )
    rows = []
    for (qc, qp), (lc, lp) in itertools.product(itertools.product(COLORS, PRODUCTS), repeat=2):
        label = (
            "relevant"
            if (qc, qp) == (lc, lp)
            else "partially_relevant"
            if qp == lp
            else "irrelevant"
        )
        rows.append({"query_id": f"q-{qc}-{qp}", "listing_id": f"L-{lc}-{lp}", "label": label})
    pairs = pd.DataFrame(rows)
    golden_q = ["q-red-mug", "q-blue-lamp", "q-green-sock"]
    for path, frame in {
        "data/prepared/listings.parquet": listings,
        "data/prepared/queries.parquet": queries,
        "data/annotations/judgments.parquet": pairs[~pairs["query_id"].isin(golden_q)],
        "data/golden/golden.parquet": pairs[pairs["query_id"].isin(golden_q)],
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        frame.reset_index(drop=True).to_parquet(root / path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """A tiny student trained and exported in a toy project (cwd = the project)."""
    from relevance_kit.student.export import export_student
    from relevance_kit.student.train import fit_student

    root = tmp_path_factory.mktemp("student")
    toy_project(root)
    cfg = tiny_cfg(
        "student.epochs=20",
        "student.lr=3e-3",
        "student.head_lr=3e-3",
        "student.listing_fields=[title]",
        "+trainer.gradient_clip_val=null",
        "student.val_fraction=0.25",
        "student.max_train_pairs=null",
        "student.batch_size=12",
        "student.targets=data/annotations/judgments.parquet",  # the toy project has no teacher
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        model_dir = root / "models" / "student" / cfg.student.name
        summary = fit_student(cfg, model_dir / "runs", root / "dvclive", model_dir / "student.ckpt")
        listings = pd.read_parquet(root / "data/prepared/listings.parquet")
        manifest = export_student(model_dir / "student.ckpt", listings, model_dir / "export")
        yield {
            "root": root,
            "cfg": cfg,
            "summary": summary,
            "manifest": manifest,
            "export": model_dir / "export",
            "ckpt": model_dir / "student.ckpt",
            "listings": listings,
        }


@pytest.mark.slow
def test_tiny_student_learns_a_separable_toy_set(trained) -> None:
    from relevance_kit.metrics import classification_report
    from relevance_kit.student.predict import predict_pairs
    from relevance_kit.student.scorer import RelevanceScorer

    s = trained["summary"]
    # held-out queries pick the checkpoint; always predicting the majority class scores
    # macro-F1 of about 0.27 on them, and on the golden queries (never seen in training)
    assert s["best_val_macro_f1_vs_targets"] >= 0.5, s
    golden = pd.read_parquet(trained["root"] / "data/golden/golden.parquet")
    gains = {"relevant": 1.0, "partially_relevant": 0.5, "irrelevant": 0.0}
    pred = predict_pairs(RelevanceScorer.load(trained["export"]), golden, QUERY_TEXT, gains)
    assert classification_report(golden["label"], pred["label"], LABELS)["macro_f1"] >= 0.5
    assert (trained["root"] / "dvclive" / "metrics.json").exists()


@pytest.mark.slow
def test_export_parity_and_index_for_every_listing(trained) -> None:
    from relevance_kit.student.parity import parity_report
    from relevance_kit.student.scorer import RelevanceScorer

    scorer = RelevanceScorer.load(trained["export"])
    assert sorted(scorer.listing_ids.tolist()) == sorted(trained["listings"]["listing_id"])
    assert scorer.manifest["n_listings"] == len(trained["listings"])
    golden = pd.read_parquet(trained["root"] / "data/golden/golden.parquet")
    report = parity_report(trained["ckpt"], scorer, golden, QUERY_TEXT, trained["listings"])
    assert report["parity_max_abs_diff"] < 1e-4 and report["parity_argmax_agreement"] == 1.0, report
    int8 = RelevanceScorer.load(trained["export"], "int8").score(
        "red mug", ["L-red-mug", "L-blue-sock"]
    )
    assert int8.shape == (2, 3) and np.allclose(int8.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_scorer_api_and_refusals(trained, tmp_path: Path) -> None:
    from relevance_kit.student.scorer import RelevanceScorer

    scorer = RelevanceScorer.load(trained["export"])
    assert scorer.labels == LABELS and scorer.version == trained["manifest"]["version"]
    probs = scorer.score("red mug", ["L-red-mug", "L-blue-mug", "L-red-sock"])
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(DataError, match="not in the student index.*L-nope"):
        scorer.score("red mug", ["L-red-mug", "L-nope"])
    # an index stamped by other weights is refused, naming both versions
    with np.load(trained["export"] / "index.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    other = tmp_path / "other_index.npz"
    np.savez(other, **{**arrays, "model_version": np.asarray("0123456789abcdef")})
    with pytest.raises(DataError, match=rf"version 0123456789abcdef.*version {scorer.version}"):
        RelevanceScorer.load(trained["export"], index_path=other)


@pytest.mark.slow
def test_service_error_cases(trained) -> None:
    from fastapi.testclient import TestClient

    from relevance_kit.student.scorer import RelevanceScorer
    from relevance_kit.student.service import create_app

    scorer = RelevanceScorer.load(trained["export"])
    client = TestClient(create_app(scorer, max_listing_ids=3, max_query_chars=20))
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "model": "tiny_random",
        "version": scorer.version,
        "listings": 15,
    }
    ok = client.post(
        "/score", json={"query": "red mug", "listing_ids": ["L-red-mug", "L-blue-sock"]}
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["version"] == scorer.version
    assert body["listing_ids"] == ["L-red-mug", "L-blue-sock"]
    expected = scorer.score("red mug", ["L-red-mug", "L-blue-sock"])
    np.testing.assert_allclose(body["probabilities"], expected, atol=1e-6)
    assert body["predicted"] == [body["labels"][row.argmax()] for row in expected]
    cases = [
        ({"query": "red mug", "listing_ids": ["L-red-mug", "L-nope"]}, 404, "L-nope"),
        ({"query": "   ", "listing_ids": ["L-red-mug"]}, 422, "query is empty"),
        ({"query": "x" * 21, "listing_ids": ["L-red-mug"]}, 422, "limit is 20"),
        ({"query": "red mug", "listing_ids": ["L-red-mug"] * 4}, 422, "limit is 3 per request"),
        ({"query": "red mug", "listing_ids": []}, 422, "at least 1"),
        ({"listing_ids": ["L-red-mug"]}, 422, "query"),
    ]
    for request, status, message in cases:
        response = client.post("/score", json=request)
        assert response.status_code == status and message in response.text, (request, response.text)


@pytest.mark.slow
def test_service_refuses_a_lone_surrogate_naming_the_text(trained) -> None:
    """Issue 13: `"red \\ud83d scarf"` (valid JSON, not valid Unicode) was a 500 from the tokenizer."""
    from fastapi.testclient import TestClient

    from relevance_kit.student.scorer import RelevanceScorer
    from relevance_kit.student.service import create_app

    client = TestClient(create_app(RelevanceScorer.load(trained["export"]), max_listing_ids=3, max_query_chars=20))
    for body, named in [
        (b'{"query": "red \\ud83d scarf", "listing_ids": ["L-red-mug"]}', "query 'red \\ud83d scarf' is not valid Unicode"),
        (b'{"query": "red mug", "listing_ids": ["L-red-mug", "L-\\udc00"]}', "listing_ids 'L-\\udc00' is not valid Unicode"),
    ]:
        response = client.post("/score", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422 and named in response.json()["detail"], response.text


@pytest.mark.slow
def test_service_starts_with_the_documented_command(trained) -> None:
    from relevance_kit.bench.student import wait_healthy

    port = 18000 + os.getpid() % 1000
    cmd = [
        sys.executable,
        "-m",
        "relevance_kit.student.service",
        "--export-dir",
        str(trained["export"]),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(cmd, cwd=REPO)
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/healthz", server)
        assert health["version"] == trained["manifest"]["version"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    bad = subprocess.run(
        [*cmd[:4], str(trained["root"])], check=False, capture_output=True, text=True, cwd=REPO
    )
    assert bad.returncode == 2 and "not a student export" in bad.stderr

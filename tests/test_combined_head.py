"""The teacher's combined head (teacher probabilities weighed against pair evidence), the
evidence features it reads, and the judgment that carries both to every teacher consumer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from relevance_kit.config import RelevanceConfig
from relevance_kit.config.loading import compose, validate
from relevance_kit.errors import ConfigError, DataError
from relevance_kit.evaluation.baselines import MiniLMZeroShot
from relevance_kit.evaluation.decision import DecisionBiases
from relevance_kit.evidence import EVIDENCE_FEATURES, PairEvidence
from relevance_kit.lexical import LEXICAL_FEATURES
from relevance_kit.teacher.combined_head import CombinedHead
from relevance_kit.teacher.judgment import COMBINED_HEAD_FILE, TeacherJudgment
from relevance_kit.teacher.pairs import teacher_label_fn, teacher_version
from relevance_kit.teacher.scoring import make_scorer, score_frame
from relevance_kit.teacher.train import train_teacher
from tests.conftest import REPO

LABELS = ["relevant", "partially_relevant", "irrelevant"]


def make_cfg(*overrides: str) -> RelevanceConfig:
    return validate(
        yaml.safe_load(compose(["experiment=ci_tiny", *overrides], REPO / "conf")), REPO / "conf"
    )


def synthetic(
    n: int = 600, seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, np.ndarray]:
    """Labels that one evidence column tells apart and the teacher's (random) probabilities
    do not; 30 queries of n/30 pairs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    probs = rng.dirichlet([1, 1, 1], n)
    evidence = pd.DataFrame({"signal": -y + rng.normal(0, 0.2, n), "noise": rng.normal(0, 1, n)})
    groups = np.repeat([f"q{i}" for i in range(30)], n // 30)
    return probs, evidence, np.array(LABELS)[y], groups


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.array(LABELS)[probs.argmax(axis=1)] == y))


def test_identity_head_returns_the_teachers_probabilities() -> None:
    probs, evidence, _, _ = synthetic()
    head = CombinedHead.identity(LABELS, ["signal"])
    np.testing.assert_allclose(head.apply(probs, evidence), probs, atol=1e-9)


def test_head_learns_from_evidence_when_the_teacher_knows_nothing() -> None:
    probs, evidence, y, _ = synthetic()
    head = CombinedHead(LABELS, ["signal", "noise"]).fit(probs[:300], evidence[:300], y[:300])
    out = head.apply(probs[300:], evidence[300:])
    assert accuracy(out, y[300:]) > 0.9
    assert accuracy(probs[300:], y[300:]) < 0.5
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_head_keeps_an_informed_teacher_when_evidence_is_noise() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    probs = np.full((600, 3), 0.1)
    probs[np.arange(600), y] = 0.8
    evidence = pd.DataFrame({"noise": rng.normal(0, 1, 600)})
    labels = np.array(LABELS)[y]
    head = CombinedHead(LABELS, ["noise"]).fit(probs[:300], evidence[:300], labels[:300])
    assert accuracy(head.apply(probs[300:], evidence[300:]), labels[300:]) == 1.0


def test_a_label_absent_from_the_fit_is_never_predicted() -> None:
    probs, evidence, y, _ = synthetic()
    keep = y != "partially_relevant"
    head = CombinedHead(LABELS, ["signal"]).fit(probs[keep], evidence[keep], y[keep])
    out = head.apply(probs, evidence)
    assert out[:, 1].max() < 1e-9
    assert accuracy(out[keep], y[keep]) > 0.9


def test_bad_fits_and_inputs_fail_clearly() -> None:
    probs, evidence, y, _ = synthetic(60)
    with pytest.raises(DataError, match="one label only"):
        CombinedHead(LABELS, ["signal"]).fit(probs, evidence, ["relevant"] * 60)
    with pytest.raises(DataError, match=r"labels \['exact'\]"):
        CombinedHead(LABELS, ["signal"]).fit(probs, evidence, ["exact"] * 60)
    with pytest.raises(DataError, match=r"missing \['other'\]"):
        CombinedHead(LABELS, ["other"]).fit(probs, evidence, y)
    with pytest.raises(DataError, match=r"shape \(n, 3\)"):
        CombinedHead(LABELS, ["signal"]).fit(probs[:, :2], evidence, y)
    broken = evidence.copy()
    broken.loc[7, "signal"] = np.nan
    with pytest.raises(DataError, match="row 7: non-finite"):
        CombinedHead(LABELS, ["signal"]).fit(probs, broken, y)


def test_out_of_fold_probabilities_never_come_from_a_head_fitted_on_their_query() -> None:
    probs, evidence, y, groups = synthetic()
    head = CombinedHead(LABELS, ["signal", "noise"])
    oof = head.out_of_fold(probs, evidence, y, groups, folds=5)
    assert oof.shape == probs.shape and accuracy(oof, y) > 0.9
    # a query whose labels are flipped is predicted by heads that never saw the flip
    flipped = y.copy()
    rows = groups == "q0"
    flipped[rows] = np.where(y[rows] == "relevant", "irrelevant", "relevant")
    oof = head.out_of_fold(probs, evidence, flipped, groups, folds=5)
    assert accuracy(oof[rows], flipped[rows]) < 0.5
    with pytest.raises(DataError, match="2\\+ validation queries"):
        head.out_of_fold(probs, evidence, y, np.full(len(y), "q0"), folds=5)


def test_saved_head_predicts_as_the_fitted_one_and_refuses_other_features() -> None:
    probs, evidence, y, _ = synthetic()
    head = CombinedHead(LABELS, ["signal", "noise"], c=0.5).fit(probs, evidence, y)
    again = CombinedHead.from_dict(head.to_dict(), LABELS, ["signal", "noise"])
    np.testing.assert_allclose(again.apply(probs, evidence), head.apply(probs, evidence))
    with pytest.raises(DataError, match="fitted for labels"):
        CombinedHead.from_dict(head.to_dict(), LABELS, ["signal"])


def catalogue() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Eight queries over twelve listings; the label follows the shared words."""
    words = ["red", "wool", "scarf", "garden", "hose", "mug", "blue", "lamp", "oak", "desk"]
    listings = pd.DataFrame({
        "listing_id": [f"l{i}" for i in range(12)],
        "title": [f"{words[i % 10]} {words[(3 * i + 1) % 10]}" for i in range(12)],
        "brand": None, "image_urls": [[] for _ in range(12)],
    })  # fmt: skip
    queries = pd.DataFrame({
        "query_id": [f"q{i}" for i in range(8)],
        "text": [f"{words[i % 10]} {words[(3 * i + 1) % 10]}" for i in range(8)],
    })  # fmt: skip
    rows = []
    for q, text in zip(queries["query_id"], queries["text"]):
        for lid, title in zip(listings["listing_id"], listings["title"]):
            shared = len(set(text.split()) & set(title.split()))
            rows.append((q, lid, LABELS[2 - shared], None))
    return (
        queries,
        listings,
        pd.DataFrame(rows, columns=["query_id", "listing_id", "label", "rationale"]),
    )


def test_evidence_features_are_the_ltr_features_plus_the_minilm_cosine() -> None:
    assert EVIDENCE_FEATURES == (*LEXICAL_FEATURES, "minilm_cosine")
    queries, listings, pairs = catalogue()
    query_text = dict(zip(queries["query_id"], queries["text"]))
    lexical = PairEvidence(listings, ["title_coverage", "bm25"])
    assert lexical.cosine is None  # no MiniLM loaded for lexical features
    frame = lexical.frame(pairs, query_text)
    assert list(frame.columns) == ["title_coverage", "bm25"] and len(frame) == len(pairs)
    cosine = PairEvidence(listings, ["minilm_cosine"]).frame(pairs, query_text)["minilm_cosine"]
    zero_shot = MiniLMZeroShot(queries, listings).pair_scores(pairs)
    np.testing.assert_allclose(cosine, zero_shot, atol=1e-6)
    with pytest.raises(ConfigError, match="unknown \\['clicks'\\]"):
        PairEvidence(listings, ["clicks"])


def test_a_config_naming_an_unknown_feature_fails_at_its_key_path() -> None:
    with pytest.raises(ConfigError, match="teacher.combined_head.features"):
        make_cfg("teacher.combined_head.features=[bm25,clicks]")


def test_trained_teacher_judges_through_its_combined_head(tmp_path: Path) -> None:
    """train_teacher fits the head on its validation queries; the label function every
    consumer uses applies head and biases to the exported model's probabilities, and the
    model version changes with the head."""
    torch.set_num_threads(1)
    queries, listings, labelled = catalogue()
    cfg = make_cfg("teacher.epochs=1")
    out = tmp_path / "teacher"
    metrics = train_teacher(cfg, labelled, queries, listings, out)
    assert metrics["combined_head"]["features"] == cfg.teacher.combined_head.features
    assert set(metrics["validation_macro_f1_teacher_alone"]) >= {"before", "after"}

    pairs = labelled[["query_id", "listing_id"]].head(20)
    judged = teacher_label_fn(cfg, out, tmp_path / "work")(pairs, queries, listings)
    raw = score_frame(
        make_scorer(cfg, out / "export", cfg.inference), pairs, queries, listings, "t"
    )
    judgment = TeacherJudgment.load(out, LABELS, cfg.teacher.combined_head.features)
    query_text = dict(zip(queries["query_id"], queries["text"]))
    np.testing.assert_allclose(judged, judgment.apply(raw, pairs, query_text, listings), atol=1e-9)
    assert not np.allclose(judged, DecisionBiases(LABELS).apply(raw))  # the head did something

    before = teacher_version(cfg, out)
    TeacherJudgment.neutral(LABELS, cfg.teacher.combined_head.features).save(out)
    assert teacher_version(cfg, out) != before
    (out / COMBINED_HEAD_FILE).unlink()
    with pytest.raises(DataError, match="combined_head.json: not found; train the teacher"):
        teacher_label_fn(cfg, out, tmp_path / "work")

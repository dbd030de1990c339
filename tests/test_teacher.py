"""Teacher tier on tiny random models: text and vision teachers overfit a handful of pairs
through the real Lightning module and the one-forward-pass scorer, checkpoints resume,
verbalizers that one forward pass cannot tell apart are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.errors import ConfigError
from relevance_kit.schemas import soft_label_frame
from relevance_kit.teacher.encoding import pairs_from_frames, verbalizer_ids
from relevance_kit.teacher.models import load_teacher
from relevance_kit.teacher.scoring import HFScorer
from relevance_kit.teacher.train import TeacherDataModule, build_module, make_trainer, train_teacher
from tests.conftest import REPO

LABELS = ["relevant", "partially_relevant", "irrelevant"]
COLORS = {
    "relevant": (220, 30, 30),
    "partially_relevant": (30, 200, 30),
    "irrelevant": (30, 30, 220),
}


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """2 shared cores: one torch thread avoids OpenMP contention that slows tiny models 30x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_cfg(*overrides: str) -> RelevanceConfig:
    return validate(
        yaml.safe_load(compose(["experiment=ci_tiny", *overrides], REPO / "conf")), REPO / "conf"
    )


def catalogue(
    tmp_path: Path, same_text: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Six labelled pairs over two queries; each listing has a local image coloured by its label.
    With `same_text` every listing reads the same, so only the image tells the labels apart."""
    titles = {
        "relevant": "red wool scarf",
        "partially_relevant": "wool gloves",
        "irrelevant": "garden hose",
    }
    rows, pairs = [], []
    for i in range(6):
        label = LABELS[i % 3]
        image = tmp_path / f"l{i}.png"
        Image.new("RGB", (56, 56), COLORS[label]).save(image)
        rows.append(
            {
                "listing_id": f"l{i}",
                "title": "a product" if same_text else f"{titles[label]} {i}",
                "brand": None,
                "image_urls": [str(image)],
            }
        )
        pairs.append(
            {"query_id": f"q{i % 2}", "listing_id": f"l{i}", "label": label, "rationale": None}
        )
    queries = pd.DataFrame({"query_id": ["q0", "q1"], "text": ["red scarf", "warm scarf"]})
    return queries, pd.DataFrame(rows), pd.DataFrame(pairs)


def overfit(
    cfg: RelevanceConfig, tmp_path: Path, same_text: bool = False, return_bundle: bool = False
) -> tuple[Any, ...]:
    queries, listings, labelled = catalogue(tmp_path, same_text)
    bundle = load_teacher(cfg.teacher, LABELS)
    encoder = bundle.kind.encoder(cfg, bundle)
    pairs = pairs_from_frames(labelled, queries, listings, "test pairs")
    features = [encoder.encode(p, with_target=True) for p in pairs]
    module = build_module(cfg, bundle, encoder)
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            losses.append(float(outputs["loss"]))

    trainer = make_trainer(cfg, tmp_path / "run", tmp_path / "ckpt")
    trainer.callbacks.append(Record())
    trainer.fit(
        module,
        datamodule=TeacherDataModule(features, features, 6, bundle.tokenizer.pad_token_id, 0),
    )
    probs = HFScorer(cfg, bundle, batch_size=4).score(pairs)
    if return_bundle:
        return losses, probs, list(labelled["label"]), bundle
    return losses, probs, list(labelled["label"])


def test_tiny_text_teacher_overfits_a_handful_of_pairs(tmp_path: Path) -> None:
    cfg = make_cfg("teacher.epochs=40", "teacher.optimizer.lr=0.01")
    losses, probs, labels = overfit(cfg, tmp_path)
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:3]), losses
    assert [LABELS[i] for i in probs.argmax(1)] == labels
    assert np.allclose(probs.sum(1), 1.0)
    frame = soft_label_frame(
        pd.DataFrame({"query_id": ["q"] * 6, "listing_id": list("abcdef")}), probs, LABELS
    )
    assert list(frame.columns) == [
        "query_id",
        "listing_id",
        "p_relevant",
        "p_partially_relevant",
        "p_irrelevant",
        "label",
        "entropy",
    ]
    assert (frame["entropy"] >= 0).all()


@pytest.mark.slow
def test_tiny_vision_teacher_learns_labels_from_the_images_alone(tmp_path: Path) -> None:
    cfg = make_cfg(
        "teacher.kind._target_=relevance_kit.teacher.kinds.VisionLM",
        "teacher.model=tiny-random-qwen2-vl",
        "teacher.epochs=60",
        "teacher.optimizer.lr=0.01",
    )
    losses, probs, labels = overfit(cfg, tmp_path, same_text=True)
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:3]), losses
    assert [LABELS[i] for i in probs.argmax(1)] == labels  # identical text: the pixels decide
    assert np.allclose(probs.sum(1), 1.0)


def test_training_resumes_from_the_last_checkpoint_without_repeating_steps(tmp_path: Path) -> None:
    queries, listings, labelled = catalogue(tmp_path)
    cfg1 = make_cfg("teacher.epochs=1", "teacher.batch_size=2", "teacher.trainable_layers=1")
    bundle = load_teacher(cfg1.teacher, LABELS)
    encoder = bundle.kind.encoder(cfg1, bundle)
    features = [
        encoder.encode(p, with_target=True)
        for p in pairs_from_frames(labelled, queries, listings, "pairs")
    ]
    dm = TeacherDataModule(features, features, 2, bundle.tokenizer.pad_token_id, 0)
    first = make_trainer(cfg1, tmp_path / "run", tmp_path / "ckpt")
    first.fit(build_module(cfg1, bundle, encoder), datamodule=dm)
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 3
    assert saved["state_dict"] and all(
        k.startswith("model.model.layers.1.") or "norm" in k for k in saved["state_dict"]
    ), "only trained weights are checkpointed"

    cfg2 = make_cfg("teacher.epochs=2", "teacher.batch_size=2", "teacher.trainable_layers=1")
    resumed_bundle = load_teacher(
        cfg2.teacher, LABELS, seed=1
    )  # different init: the checkpoint must restore it
    module = build_module(cfg2, resumed_bundle, encoder)
    steps: list[int] = []

    class Count(L.Callback):
        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            steps.append(trainer.global_step)

    second = make_trainer(cfg2, tmp_path / "run", tmp_path / "ckpt")
    second.callbacks.append(Count())
    second.fit(module, datamodule=dm, ckpt_path="last")
    assert steps == [3, 4, 5] and second.global_step == 6


def test_verbalizers_must_start_with_distinct_tokens() -> None:
    bundle = load_teacher(make_cfg().teacher, LABELS)
    ids = verbalizer_ids(bundle.tokenizer, LABELS, {})
    assert len({t[0] for t in ids}) == 3
    with pytest.raises(ConfigError) as err:
        verbalizer_ids(
            bundle.tokenizer,
            LABELS,
            {"relevant": "partially right", "partially_relevant": "partially"},
        )
    assert (
        "relevant" in str(err.value)
        and "partially_relevant" in str(err.value)
        and "'partially'" in str(err.value)
    )
    with pytest.raises(ConfigError, match="not in the taxonomy"):
        verbalizer_ids(bundle.tokenizer, LABELS, {"exact": "exact"})


def test_training_seed_changes_the_model_but_not_the_data(tmp_path: Path) -> None:
    """`training_seed` draws initialisation and batch order; `seed` draws the validation
    split, so a training-seed sweep varies the model on the same data."""
    from safetensors.torch import load_file

    queries, listings, labelled = catalogue(tmp_path)
    runs = {}
    for training_seed in (1, 2):
        cfg = make_cfg(
            f"training_seed={training_seed}", "teacher.epochs=2", "teacher.combined_head=null"
        )
        out = tmp_path / f"seed{training_seed}"
        metrics = train_teacher(cfg, labelled, queries, listings, out)
        runs[training_seed] = (metrics, load_file(out / "export" / "model.safetensors"))
    (m1, w1), (m2, w2) = runs[1], runs[2]
    assert (m1["train_pairs"], m1["validation_queries"]) == (
        m2["train_pairs"],
        m2["validation_queries"],
    )
    assert w1.keys() == w2.keys()
    assert any(not torch.equal(w1[k], w2[k]) for k in w1), (
        "same weights under another training_seed"
    )


def test_scoring_and_serving_import_no_training_framework() -> None:
    """The daily judge (teacher scoring, its label store) and the student service score
    without Lightning: each stage or service start would pay seconds for importing it."""
    code = """
import sys, torch
from transformers import BertConfig, BertForSequenceClassification
import relevance_kit.student.service, relevance_kit.teacher.pairs, relevance_kit.teacher.scoring
from relevance_kit.teacher.kinds import CrossEncoder
config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                    intermediate_size=8, num_labels=3)
batch = {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 4, dtype=torch.long)}
assert CrossEncoder().label_logits(BertForSequenceClassification(config), batch, None).shape == (2, 3)
print(sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "lightning_fabric", "torchmetrics"}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout

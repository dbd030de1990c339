"""The teacher's GPU path (needs CUDA: `pytest -m gpu tests/test_teacher_gpu.py`): a tiny
random Qwen3 teacher trains under Lightning with `trainer=gpu` (bf16-mixed), fully or with
LoRA adapters, and the trained model scores the same on the GPU as on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from relevance_kit.teacher.encoding import pairs_from_frames
from relevance_kit.teacher.scoring import HFScorer
from tests.test_teacher import LABELS, catalogue, make_cfg, overfit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_teacher_overfits_in_bf16_on_the_gpu_and_scores_like_the_cpu(tmp_path: Path) -> None:
    cfg = make_cfg("trainer=gpu", "teacher.epochs=40", "teacher.optimizer.lr=0.01")
    losses, probs, labels, bundle = overfit(cfg, tmp_path, return_bundle=True)
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:3]), losses
    assert [LABELS[i] for i in probs.argmax(1)] == labels
    queries, listings, labelled = catalogue(tmp_path)
    pairs = pairs_from_frames(labelled, queries, listings, "pairs")
    bundle.model.to("cuda")  # Lightning hands the model back on the CPU after fit
    on_gpu = HFScorer(cfg, bundle, batch_size=4).score(pairs)
    bundle.model.to("cpu")
    on_cpu = HFScorer(cfg, bundle, batch_size=4).score(pairs)
    print(f"max |p_gpu - p_cpu| = {np.abs(on_gpu - on_cpu).max():.2e}")
    assert np.abs(on_gpu - on_cpu).max() < 1e-3  # fp32 weights; only kernels differ


def test_lora_trains_only_the_adapters_in_bf16(tmp_path: Path) -> None:
    """A random 64-wide model with frozen random embeddings cannot be overfitted through
    rank-8 attention adapters (the loss plateaus, on CPU too); what must hold is that the
    loss falls and the base weights do not move."""
    cfg = make_cfg(
        "trainer=gpu",
        "teacher.epochs=20",
        "teacher.optimizer.lr=0.01",
        "teacher.lora={r: 8, alpha: 16, dropout: 0.0, target_modules: [q_proj, k_proj, v_proj, o_proj]}",
    )
    losses, _, _, bundle = overfit(cfg, tmp_path, return_bundle=True)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5, losses
    trainable = [name for name, p in bundle.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable), trainable

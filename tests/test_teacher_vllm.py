"""vLLM's offline engine against the hf backend (needs CUDA and the vllm package: run with
`pytest -m vllm tests/test_teacher_vllm.py` on a GPU machine). A tiny random Qwen3 export
is scored by both with the same prompts and label tokens; probabilities must agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from relevance_kit.teacher.encoding import pairs_from_frames
from relevance_kit.teacher.kinds import CausalLM
from relevance_kit.teacher.models import export, load_pretrained, load_teacher
from relevance_kit.teacher.scoring import HFScorer, VLLMScorer
from tests.test_teacher import LABELS, catalogue, make_cfg

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.gpu,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(),
        reason="needs vllm and a CUDA GPU",
    ),
]


def test_vllm_engine_matches_hf_scoring(tmp_path: Path) -> None:
    cfg = make_cfg()
    export(load_teacher(cfg.teacher, LABELS), tmp_path / "export")
    queries, listings, labelled = catalogue(tmp_path)
    pairs = pairs_from_frames(labelled, queries, listings, "pairs")
    bundle = load_pretrained(CausalLM(), tmp_path / "export", LABELS)
    hf = HFScorer(cfg, bundle, batch_size=4).score(pairs)
    inference = make_cfg("inference=vllm", "inference.batch_size=8").inference
    served = VLLMScorer(cfg, tmp_path / "export", bundle.tokenizer, inference).score(pairs)
    assert np.allclose(served.sum(1), 1.0)
    assert np.abs(hf - served).max() < 0.02  # same fp32/bf16 weights; kernels differ slightly

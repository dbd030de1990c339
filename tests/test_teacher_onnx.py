"""The cross-encoder teacher through ONNX Runtime (`inference=onnx`): the same probabilities
as the transformers path (fp32: exact to float error; int8: close, same argmax on most
pairs), batches of mixed lengths, and a clear error for a teacher it cannot score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from relevance_kit.errors import ConfigError
from relevance_kit.teacher.encoding import pairs_from_frames
from relevance_kit.teacher.kinds import CrossEncoder
from relevance_kit.teacher.models import load_pretrained, minilm_path
from relevance_kit.teacher.onnx_scoring import OnnxCrossEncoderScorer
from relevance_kit.teacher.scoring import HFScorer, make_scorer
from tests.test_teacher import catalogue, make_cfg

pytestmark = pytest.mark.slow


def test_onnx_cross_encoder_matches_the_transformers_path(tmp_path: Path) -> None:
    cfg = make_cfg("teacher=minilm_cross_encoder", "inference=onnx", "inference.batch_size=4")
    queries, listings, judged = catalogue(tmp_path)
    listings.loc[0, "title"] = "red wool scarf, hand knitted, extra long, " * 6  # lengths differ
    pairs = pairs_from_frames(judged, queries, listings, "test")
    bundle = load_pretrained(CrossEncoder(), minilm_path(), cfg.taxonomy.ids)
    reference = HFScorer(cfg, bundle, batch_size=4).score(pairs)
    fp32 = OnnxCrossEncoderScorer(
        cfg, bundle, cfg.inference.model_copy(update={"int8": False})
    ).score(pairs)
    int8 = OnnxCrossEncoderScorer(cfg, bundle, cfg.inference).score(pairs)
    assert fp32.shape == (6, 3) and np.allclose(fp32.sum(axis=1), 1.0)
    np.testing.assert_allclose(fp32, reference, atol=1e-5)
    assert np.abs(int8 - reference).max() < 0.05
    unsorted = OnnxCrossEncoderScorer(
        cfg, bundle, cfg.inference.model_copy(update={"int8": False, "sort_by_length": False})
    )
    np.testing.assert_allclose(unsorted.score(pairs), fp32, atol=1e-5)  # padding never leaks


def test_fused_and_per_channel_graphs_keep_parity(tmp_path: Path) -> None:
    """ORT's transformer optimiser fuses the cross-encoder (attention, GELU, LayerNorms)
    without changing its probabilities beyond float error; per-channel int8 on the fused
    graph (conf/inference/onnx.yaml) stays within the bound the per-tensor int8 had; its
    threads may sleep instead of spinning, and batches run one per thread or one at a time,
    without changing a result."""
    import onnx

    from relevance_kit.teacher.onnx_scoring import export_cross_encoder

    cfg = make_cfg("teacher=minilm_cross_encoder", "inference=onnx", "inference.batch_size=4")
    assert cfg.inference.optimize and cfg.inference.int8_per_channel
    queries, listings, judged = catalogue(tmp_path)
    listings.loc[0, "title"] = "red wool scarf, hand knitted, extra long, " * 6
    pairs = pairs_from_frames(judged, queries, listings, "test")
    bundle = load_pretrained(CrossEncoder(), minilm_path(), cfg.taxonomy.ids)
    reference = HFScorer(cfg, bundle, batch_size=4).score(pairs)

    def scored(**update) -> np.ndarray:
        inference = cfg.inference.model_copy(update=update)
        return OnnxCrossEncoderScorer(cfg, bundle, inference).score(pairs)

    np.testing.assert_allclose(scored(int8=False), reference, atol=1e-5)  # fused fp32
    served = scored()
    assert np.abs(served - reference).max() < 0.05
    np.testing.assert_array_equal(scored(allow_spinning=True), served)
    assert cfg.inference.parallel_batches  # the same batches, one at a time on all threads:
    np.testing.assert_allclose(scored(parallel_batches=False), served, atol=1e-6)
    ops = {}
    for name, update in {"fp32": {"int8": False}, "int8": {}}.items():
        folder = tmp_path / name
        folder.mkdir()
        path = export_cross_encoder(
            bundle.model, folder / "t.onnx", cfg.inference.model_copy(update=update)
        )
        ops[name] = {n.op_type for n in onnx.load(path).graph.node}
    assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization"} <= ops["fp32"]
    assert {"QAttention", "SkipLayerNormalization"} <= ops["int8"], ops


def test_onnx_backend_refuses_a_generative_teacher(tmp_path: Path) -> None:
    cfg = make_cfg("inference=onnx")  # ci_tiny's teacher is a tiny causal LM
    with pytest.raises(ConfigError, match="'onnx' scores cross-encoder teachers"):
        make_scorer(cfg, tmp_path, cfg.inference)

"""ONNX Runtime graph work shared by the student's export and the teacher's CPU scoring:
the transformer graph optimiser, int8 dynamic quantization and session options.

- `optimize_bert`: `onnxruntime.transformers.optimizer` fuses a BERT encoder's embedding +
  LayerNorm, attention, bias + GELU and residual + LayerNorm subgraphs into single ORT
  contrib ops (EmbedLayerNormalization, Attention, BiasGelu, SkipLayerNormalization);
  offline, pure graph rewriting.
- `quantize_int8`: `onnxruntime.quantization.quantize_dynamic` (int8 weights, activations
  quantized per batch at run time). Per-channel weight scales (one per output column)
  instead of one per tensor keep far more of the model's accuracy at the same speed
  (metrics/bench_teacher.json, bench_student.json). A fused Attention node becomes
  QAttention.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import onnxruntime as ort

from relevance_kit.io import atomic_path


def optimize_bert(source: Path, target: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Write the fused graph of a BERT-family encoder; returns the fused op counts."""
    from onnxruntime.transformers import optimizer

    # opt_level 0: only the offline fusions; ORT applies its own (level ALL) at load time
    model = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=0,
    )
    with atomic_path(target) as tmp:
        model.save_model_to_file(str(tmp))
    return {k: v for k, v in model.get_fused_operator_statistics().items() if v}


def quantize_int8(source: Path, target: Path, per_channel: bool) -> None:
    """Dynamic int8 quantization of the weights (activations stay float between ops)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ORT's contrib ops (the optimiser's fusions) carry no type for shape inference:
    # their outputs are float
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" on every call
    try:
        with atomic_path(target) as tmp:
            quantize_dynamic(
                str(source),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                extra_options=extra,
            )
    finally:
        logging.getLogger().setLevel(level)


def session(path: str | Path, threads: int, allow_spinning: bool = True) -> ort.InferenceSession:
    """A CPU session with `threads` intra-op threads. `allow_spinning=False`: idle pool
    threads sleep instead of busy-waiting between ops, which on a machine whose cores
    are shared with other work keeps them from stealing the cores the work needs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not allow_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

"""Bulk scoring of the cross-encoder teacher with ONNX Runtime on CPU (`inference=onnx`).

The trained teacher is exported to ONNX (dynamic batch and length axes) into a temporary
folder when the scorer starts, optionally int8-quantized (dynamic: weights int8,
activations float), and loaded once; the file is not kept (the session holds the model).
Pairs are scored in batches of similar length (sorted by token count, each batch padded
only to its own longest pair), the same label order and softmax as the `hf` backend.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from tqdm.auto import tqdm

from relevance_kit.config import InferenceConfig, RelevanceConfig
from relevance_kit.teacher.encoding import Pair, collate
from relevance_kit.teacher.models import TeacherBundle

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Logits(nn.Module):
    """The classifier's logits only (ONNX export wants tensors out, not a ModelOutput)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits


def export_cross_encoder(model: nn.Module, path: Path, int8: bool) -> Path:
    """ONNX of the cross-encoder at `path` (and `path`.int8 when asked); returns the one to load."""
    example = torch.ones((2, 8), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            _Logits(model.eval()),
            (example, example, torch.zeros_like(example)),
            str(path),
            input_names=list(INPUTS),
            output_names=["logits"],
            dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in INPUTS}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    if not int8:
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
    return quantized


class OnnxCrossEncoderScorer:
    """`score(pairs)` -> (n, K) label probabilities, like `HFScorer`."""

    def __init__(
        self, cfg: RelevanceConfig, bundle: TeacherBundle, inference: InferenceConfig
    ) -> None:
        self.encoder = bundle.kind.encoder(cfg, bundle)
        self.batch_size = inference.batch_size
        self.sort_by_length = inference.sort_by_length
        self.pad_id = bundle.tokenizer.pad_token_id or 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = inference.threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        with tempfile.TemporaryDirectory() as tmp:
            model = export_cross_encoder(bundle.model, Path(tmp) / "teacher.onnx", inference.int8)
            self.session = ort.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"]
            )

    def score(self, pairs: Sequence[Pair], desc: str = "teacher scoring (onnx)") -> np.ndarray:
        features = [self.encoder.encode(p, with_target=False) for p in pairs]
        lengths = [len(f["input_ids"]) for f in features]
        order = (
            np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(len(features))
        )
        probs = np.empty((len(features), len(self.encoder.labels)))
        for start in tqdm(
            range(0, len(order), self.batch_size), desc=desc, unit="batch", leave=False
        ):
            idx = order[start : start + self.batch_size]
            batch = collate([features[i] for i in idx], self.pad_id)
            feed = {
                k: batch[k].numpy() if k in batch else np.zeros_like(batch["input_ids"].numpy())
                for k in INPUTS
            }
            logits = self.session.run(None, feed)[0].astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            probs[idx] = e / e.sum(axis=1, keepdims=True)
        return probs

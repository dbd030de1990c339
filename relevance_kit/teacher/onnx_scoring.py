"""Bulk scoring of the cross-encoder teacher with ONNX Runtime on CPU (`inference=onnx`).

The trained teacher is exported to ONNX (dynamic batch and length axes) into a temporary
folder when the scorer starts; `inference.optimize` fuses its graph with ONNX Runtime's
transformer optimiser (attention, bias + GELU, residual + LayerNorm, embeddings + LayerNorm);
`inference.int8` quantizes it (dynamic: weights int8, per output channel under
`inference.int8_per_channel`; activations quantized per batch at run time); it is loaded
once and the file is not kept (the session holds the model). Pairs are scored in batches of
similar length (sorted by token count, each batch padded only to its own longest pair), the
same label order and softmax as the `hf` backend. Speed and parity of each choice against
`hf`: metrics/bench_teacher.json.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from relevance_kit.config import InferenceConfig, RelevanceConfig
from relevance_kit.onnx_runtime import optimize_bert, quantize_int8, session
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


def export_cross_encoder(model: nn.Module, path: Path, inference: InferenceConfig) -> Path:
    """ONNX of the cross-encoder at `path`, then (beside it) the fused and the int8 graphs
    when `inference` asks for them; returns the one to load."""
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
    if inference.optimize:
        fused = path.with_suffix(".fused.onnx")
        optimize_bert(path, fused, model.config.num_attention_heads, model.config.hidden_size)
        path = fused
    if not inference.int8:
        return path
    quantized = path.with_suffix(".int8.onnx")
    quantize_int8(path, quantized, inference.int8_per_channel)
    return quantized


class OnnxCrossEncoderScorer:
    """`score(pairs)` -> (n, K) label probabilities, like `HFScorer`. With
    `inference.parallel_batches`, as many batches run at once as there are threads, each on
    one intra-op thread of the same session (ORT's run is thread-safe and releases the GIL):
    no barrier between the threads at every op, which on shared cores is faster than one
    batch at a time on all of them (metrics/bench_teacher.json)."""

    def __init__(
        self, cfg: RelevanceConfig, bundle: TeacherBundle, inference: InferenceConfig
    ) -> None:
        self.encoder = bundle.kind.encoder(cfg, bundle)
        self.batch_size = inference.batch_size
        self.sort_by_length = inference.sort_by_length
        self.pad_id = bundle.tokenizer.pad_token_id or 0
        threads = inference.threads or torch.get_num_threads()
        self.workers = threads if inference.parallel_batches else 1
        with tempfile.TemporaryDirectory() as tmp:
            model = export_cross_encoder(bundle.model, Path(tmp) / "teacher.onnx", inference)
            self.session = session(model, threads // self.workers, inference.allow_spinning)

    def _logits(self, features: list[dict]) -> np.ndarray:
        batch = collate(features, self.pad_id)
        feed = {
            k: batch[k].numpy() if k in batch else np.zeros_like(batch["input_ids"].numpy())
            for k in INPUTS
        }
        return self.session.run(None, feed)[0]

    def score(self, pairs: Sequence[Pair], desc: str = "teacher scoring (onnx)") -> np.ndarray:
        features = [self.encoder.encode(p, with_target=False) for p in pairs]
        lengths = [len(f["input_ids"]) for f in features]
        order = (
            np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(len(features))
        )
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        probs = np.empty((len(features), len(self.encoder.labels)))
        with ThreadPoolExecutor(self.workers) as pool:
            results = pool.map(lambda idx: self._logits([features[i] for i in idx]), batches)
            for idx, logits in zip(
                batches,
                tqdm(results, total=len(batches), desc=desc, unit="batch", leave=False),
            ):
                logits = logits.astype(np.float64)
                logits -= logits.max(axis=1, keepdims=True)
                e = np.exp(logits)
                probs[idx] = e / e.sum(axis=1, keepdims=True)
        return probs

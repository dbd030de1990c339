"""A tower exported to ONNX, run with the tokenizer's Rust backend called directly: the
transformers tokenizer wrapper costs more per call than the encoding of a short query."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from relevance_kit.onnx_runtime import session


class OnnxTower:
    """texts -> (n, dim) vectors: truncation to `max_length`, padding to the longest text."""

    def __init__(self, model: str | Path, tokenizer_dir: str | Path, max_length: int, threads: int):
        self.session = session(model, threads)
        self.tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        pad = json.loads((Path(tokenizer_dir) / "tokenizer_config.json").read_text())["pad_token"]
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad), pad_token=pad)

    def tokens(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }

    def run(self, tokens: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, tokens)[0]

    def encode(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        out = [
            self.run(self.tokens(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return (
            np.concatenate(out)
            if out
            else np.zeros((0, self.session.get_outputs()[0].shape[1]), np.float32)
        )

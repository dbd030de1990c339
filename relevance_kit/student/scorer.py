"""RelevanceScorer: probabilities for 1 query x N catalogue listings, in-process.

Per request: tokenize the query, run the ONNX query encoder once (u), then the head over the
N candidates using their precomputed vectors and listing parts from the index (see
`towers.HeadParts`). The index must come from the same model version as the encoder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
import torch
from transformers import AutoTokenizer

from relevance_kit.config import StudentHead
from relevance_kit.errors import DataError
from relevance_kit.student.export import HEAD, INDEX, MANIFEST, QUERY_ENCODER, TOKENIZER
from relevance_kit.student.towers import RelevanceHead


class RelevanceScorer:
    """`score(query, listing_ids)` -> (n, K) probabilities, columns in `labels` order."""

    def __init__(
        self,
        manifest: dict,
        tokenizer: AutoTokenizer,
        session: ort.InferenceSession,
        head: RelevanceHead,
        index: dict[str, np.ndarray],
        index_path: Path,
    ) -> None:
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.labels: list[str] = list(manifest["labels"])
        self.query_max_length: int = manifest["query_max_length"]
        self.tokenizer = tokenizer
        self.session = session
        self.parts = head.parts()
        index_name, index_version = str(index["model_name"]), str(index["model_version"])
        if (index_name, index_version) != (self.name, self.version):
            raise DataError(
                f"{index_path}: index built by model {index_name!r} version {index_version}, but the "
                f"query encoder and head are {self.name!r} version {self.version}; rebuild the index "
                "with the same checkpoint (dvc repro export_student)"
            )
        self.listing_ids = index["listing_ids"]
        self.row = {listing_id: i for i, listing_id in enumerate(self.listing_ids.tolist())}
        self.vectors = torch.from_numpy(index["vectors"])
        self.listing_parts = torch.from_numpy(index["listing_parts"])

    @classmethod
    def load(
        cls,
        export_dir: str | Path,
        variant: Literal["fp32", "int8"] | None = None,
        index_path: str | Path | None = None,
        threads: int = 1,
    ) -> RelevanceScorer:
        """Load an export folder; `variant` overrides the manifest's served query encoder,
        `index_path` another index file (refused unless from the same model version)."""
        export_dir = Path(export_dir)
        manifest_path = export_dir / MANIFEST
        if not manifest_path.exists():
            raise DataError(
                f"{export_dir}: not a student export (no {MANIFEST}); run `dvc repro export_student`"
            )
        manifest = json.loads(manifest_path.read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        encoder = export_dir / QUERY_ENCODER[variant or manifest["serve"]]
        session = ort.InferenceSession(str(encoder), options, providers=["CPUExecutionProvider"])
        head = RelevanceHead(
            manifest["dim"], len(manifest["labels"]), StudentHead.model_validate(manifest["head"])
        )
        head.load_state_dict(torch.load(export_dir / HEAD, map_location="cpu", weights_only=True))
        index_path = Path(index_path or export_dir / INDEX)
        with np.load(index_path) as npz:
            index = {key: npz[key] for key in npz.files}
        tokenizer = AutoTokenizer.from_pretrained(
            str(export_dir / TOKENIZER), local_files_only=True
        )
        return cls(manifest, tokenizer, session, head.eval(), index, index_path)

    def unknown_ids(self, listing_ids: Sequence[str]) -> list[str]:
        return [i for i in listing_ids if i not in self.row]

    def encode_query(self, query: str) -> np.ndarray:
        """u for one query (no padding: a single query needs none)."""
        tokens = self.tokenizer(
            [query], truncation=True, max_length=self.query_max_length, return_tensors="np"
        )
        feed = {
            "input_ids": tokens["input_ids"].astype(np.int64),
            "attention_mask": tokens["attention_mask"].astype(np.int64),
        }
        return self.session.run(None, feed)[0][0]

    @torch.inference_mode()
    def score(self, query: str, listing_ids: Sequence[str]) -> np.ndarray:
        """Probabilities of shape (len(listing_ids), len(labels)); rows sum to 1."""
        if not query.strip():
            raise DataError("query is empty")
        unknown = self.unknown_ids(listing_ids)
        if unknown:
            raise DataError(
                f"{len(unknown)} listing id(s) not in the student index (model {self.version}): {unknown[:10]}"
            )
        rows = torch.as_tensor([self.row[i] for i in listing_ids], dtype=torch.long)
        u = torch.from_numpy(self.encode_query(query))
        logits = self.parts.score(u, self.vectors[rows], self.listing_parts[rows])
        return torch.softmax(logits, dim=-1).numpy()

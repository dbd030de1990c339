"""The student's served path as it was before the fast path (issue 15), kept only as the
benchmark's reference so that every speed-up is a ratio measured in the same run: the
transformers tokenizer call, the ONNX query encoder, a torch gather and `HeadParts.score`
per request, and the FastAPI app with pydantic request/response models run in the
threadpool. Its int8 query encoder is the one exports wrote before (per-tensor dynamic
quantization of the unfused graph): `reference_int8_encoder` rebuilds it from the export's
fp32 encoder. Not for serving.

    python -m bench.reference_student --export-dir DIR --port N [--query-encoder FILE]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from transformers import AutoTokenizer

from relevance_kit.onnx_runtime import session
from relevance_kit.student.export import INDEX, QUERY_ENCODER, TOKENIZER
from relevance_kit.student.index import ListingIndex
from relevance_kit.student.scorer import load_torch_head, read_manifest
from relevance_kit.student.service import ScoreResponse


def reference_int8_encoder(export_dir: str | Path, target: str | Path) -> Path:
    """The int8 query encoder as exports made it before issue 15, from the export's fp32
    one: per-tensor dynamic quantization of the unfused graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(Path(export_dir) / QUERY_ENCODER["fp32"]), str(target), weight_type=QuantType.QInt8
    )
    return Path(target)


class ReferenceScorer:
    """score(query, listing_ids) exactly as the served path computed it before; the query
    encoder is the export's `variant` unless `query_encoder` names another file."""

    def __init__(
        self,
        export_dir: str | Path,
        variant: str | None = None,
        threads: int = 1,
        query_encoder: str | Path | None = None,
    ):
        export_dir = Path(export_dir)
        self.manifest = read_manifest(export_dir)
        self.name, self.version = self.manifest["name"], self.manifest["version"]
        self.labels = list(self.manifest["labels"])
        self.session = session(
            query_encoder or export_dir / QUERY_ENCODER[variant or self.manifest["serve"]], threads
        )
        self.parts = load_torch_head(export_dir, self.manifest).parts()
        index = ListingIndex.load(export_dir / INDEX, self.name, self.version)
        self.row = index.row
        self.vectors = torch.from_numpy(index.vectors)
        self.listing_parts = torch.from_numpy(index.listing_parts)
        self.tokenizer = AutoTokenizer.from_pretrained(
            str(export_dir / TOKENIZER), local_files_only=True
        )

    def unknown_ids(self, listing_ids: Sequence[str]) -> list[str]:
        return [i for i in listing_ids if i not in self.row]

    def encode_query(self, query: str) -> np.ndarray:
        tokens = self.tokenizer(
            [query],
            truncation=True,
            max_length=self.manifest["query_max_length"],
            return_tensors="np",
        )
        feed = {
            "input_ids": tokens["input_ids"].astype(np.int64),
            "attention_mask": tokens["attention_mask"].astype(np.int64),
        }
        return self.session.run(None, feed)[0][0]

    @torch.inference_mode()
    def score(self, query: str, listing_ids: Sequence[str]) -> np.ndarray:
        unknown = self.unknown_ids(listing_ids)
        if unknown:
            raise KeyError(unknown[:10])
        rows = torch.as_tensor([self.row[i] for i in listing_ids], dtype=torch.long)
        u = torch.from_numpy(self.encode_query(query))
        logits = self.parts.score(u, self.vectors[rows], self.listing_parts[rows])
        return torch.softmax(logits, dim=-1).numpy()


class ReferenceRequest(BaseModel):
    query: str
    listing_ids: list[str] = Field(min_length=1)


def reference_app(scorer: ReferenceScorer, max_listing_ids: int, max_query_chars: int) -> FastAPI:
    app = FastAPI(title="relevance-kit student (reference path)")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "version": scorer.version, "listings": len(scorer.row)}

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ReferenceRequest) -> ScoreResponse:
        if not request.query.strip() or len(request.query) > max_query_chars:
            raise HTTPException(422, "bad query")
        if len(request.listing_ids) > max_listing_ids:
            raise HTTPException(422, "too many listing ids")
        unknown = scorer.unknown_ids(request.listing_ids)
        if unknown:
            raise HTTPException(404, f"unknown listing id(s): {unknown[:10]}")
        probs = scorer.score(request.query, request.listing_ids)
        labels = scorer.labels
        return ScoreResponse(
            model=scorer.name,
            version=scorer.version,
            labels=labels,
            listing_ids=request.listing_ids,
            predicted=[labels[i] for i in probs.argmax(axis=1).tolist()],
            probabilities=probs.tolist(),
        )

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--query-encoder", type=Path, default=None)
    args = parser.parse_args()
    scorer = ReferenceScorer(args.export_dir, query_encoder=args.query_encoder)
    limits = scorer.manifest["service"]
    torch.set_num_threads(limits["threads"])
    app = reference_app(scorer, limits["max_listing_ids"], limits["max_query_chars"])
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

"""Export a trained student for serving.

The export folder (`models/student/<name>/export`) holds everything the scorer needs and
nothing it must recompute per request:
- query_encoder.onnx (and query_encoder.int8.onnx: `export.optimize` first fuses the
  graph with ONNX Runtime's transformer optimiser, then dynamic int8 quantization, with
  per-channel weight scales under `export.int8_per_channel`): query -> u;
- listing_encoder.onnx when the towers are not shared (shared: query_encoder.onnx is it):
  listing text -> v, for `relevance-kit index` and listings given as text;
- head.pt: the relevance head, whose first layer the scorer splits by feature block;
- index.npz: for EVERY catalogue listing its vector v, the listing part W_l v of the
  head's first layer and a hash of its text, stamped with the model name and version;
- tokenizer/ and manifest.json (name, version, labels, limits, file hashes).
The version is a hash of the weights, so an index from other weights is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from relevance_kit.config import StudentConfig, StudentExport, saved_head
from relevance_kit.errors import DataError
from relevance_kit.io import atomic_path
from relevance_kit.onnx_runtime import optimize_bert, quantize_int8
from relevance_kit.student.data import catalogue_texts
from relevance_kit.student.index import ListingIndex, content_hash
from relevance_kit.student.towers import Tower, TwoTowerStudent, load_tokenizer

MANIFEST = "manifest.json"
INDEX = "index.npz"
HEAD = "head.pt"
TOKENIZER = "tokenizer"
QUERY_ENCODER = {"fp32": "query_encoder.onnx", "int8": "query_encoder.int8.onnx"}
LISTING_ENCODER = "listing_encoder.onnx"
ONNX_OPSET = 17


def model_version(model: nn.Module) -> str:
    """A hash of the weights: what the index and the served encoder must agree on."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# The student config's sections that do not shape the model: loading a checkpoint takes them
# from the current config, so one trained before a setting was added there still loads.
SERVING_SECTIONS = ("export", "service", "bench")


def load_student(
    checkpoint: str | Path, current: StudentConfig
) -> tuple[TwoTowerStudent, StudentConfig, list[str]]:
    """The trained model, its config (serving sections from `current`) and labels."""
    # Lightning (the checkpoint's format) only here: the scorer and service import this module
    from relevance_kit.student.module import StudentDistillModule

    saved = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    # a checkpoint saved before `bias_bootstrap` existed decides by argmax: no biases folded
    student = {"bias_bootstrap": None, **saved["hyper_parameters"]["student"]}
    student["head"] = saved_head(student["head"]).model_dump()
    student.update({k: current.model_dump()[k] for k in SERVING_SECTIONS})
    module = StudentDistillModule.load_from_checkpoint(
        str(checkpoint), map_location="cpu", student=student
    )
    return module.model.eval(), module.cfg, list(module.labels)


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, tensors: str = "pt"
) -> dict:
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors=tensors
    )
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def listing_encoder_file(manifest: dict, export_dir: Path) -> str:
    """The export's fp32 listing encoder (an export from before it was recorded has none)."""
    if "listing_encoder" not in manifest:
        raise DataError(
            f"{export_dir}: this export has no listing encoder recorded in its manifest; "
            "re-export it (dvc repro export_student) to index or score listings given as text"
        )
    return manifest["listing_encoder"]


def export_tower(
    tower: Tower, tokenizer: PreTrainedTokenizerBase, path: Path, max_length: int
) -> None:
    """A tower as ONNX with dynamic batch and sequence axes."""
    example = tokenize(
        tokenizer, ["an example query", "a second, longer example query"], max_length
    )
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(
            tower.eval(),
            (example["input_ids"], example["attention_mask"]),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["vector"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "vector": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def export_int8(tower: Tower, source: Path, target: Path, export: StudentExport) -> dict:
    """The int8 query encoder from the fp32 one (which is left as it is: it also embeds
    listings for the index); returns how it was made, for the manifest."""
    with tempfile.TemporaryDirectory() as tmp:
        fused = {}
        if export.optimize:
            config = tower.encoder.config
            fused = optimize_bert(
                source,
                Path(tmp) / "fused.onnx",
                config.num_attention_heads,
                config.hidden_size,
            )
            source = Path(tmp) / "fused.onnx"
        quantize_int8(source, target, export.int8_per_channel)
    return {"optimized": export.optimize, "per_channel": export.int8_per_channel, "fused": fused}


@torch.no_grad()
def build_index(
    model: TwoTowerStudent,
    tokenizer: PreTrainedTokenizerBase,
    listings: pd.DataFrame,
    cfg: StudentConfig,
    name: str,
    version: str,
    path: Path,
    batch_size: int,
) -> int:
    """Vectors, head listing parts and text hashes for every listing of the catalogue."""
    texts = catalogue_texts(listings, cfg.listing_fields)
    ids = list(texts)
    parts = model.head.parts()
    vectors, listing_parts = [], []
    step = batch_size
    for start in tqdm(range(0, len(ids), step), desc="student index", unit="batch"):
        batch = tokenize(
            tokenizer, [texts[i] for i in ids[start : start + step]], cfg.listing_max_length
        )
        v = model.listing_tower(**batch)
        vectors.append(v.numpy())
        listing_parts.append(parts.listing_part(v).numpy())
    ListingIndex(
        name,
        version,
        np.asarray(ids, dtype=str),
        np.concatenate(vectors).astype(np.float32),
        np.concatenate(listing_parts).astype(np.float32),
        np.asarray([content_hash(texts[i]) for i in ids], dtype=str),
    ).save(path)
    return len(ids)


def export_student(
    checkpoint: str | Path, listings: pd.DataFrame, out_dir: str | Path, current: StudentConfig
) -> dict:
    """Write the export folder (built beside it, then swapped in whole) and return its manifest.
    The model comes from the checkpoint; how it is exported and served comes from the current
    config (`current.export`, `.service`), so changing those reruns the export, not the
    training."""
    model, cfg, labels = load_student(checkpoint, current)
    export, service = cfg.export, cfg.service
    version = model_version(model)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tokenizer = load_tokenizer(cfg.encoder)
    tokenizer.save_pretrained(str(staging / TOKENIZER))
    export_tower(
        model.query_tower, tokenizer, staging / QUERY_ENCODER["fp32"], cfg.query_max_length
    )
    listing_encoder = QUERY_ENCODER["fp32"] if cfg.shared_towers else LISTING_ENCODER
    if not cfg.shared_towers:
        export_tower(
            model.listing_tower, tokenizer, staging / LISTING_ENCODER, cfg.listing_max_length
        )
    int8 = export_int8(
        model.query_tower, staging / QUERY_ENCODER["fp32"], staging / QUERY_ENCODER["int8"], export
    )
    torch.save(model.head.state_dict(), staging / HEAD)
    n_listings = build_index(
        model, tokenizer, listings, cfg, cfg.name, version, staging / INDEX, export.index_batch_size
    )
    manifest = {
        "name": cfg.name,
        "version": version,
        "labels": labels,
        "encoder": cfg.encoder,
        "dim": model.query_tower.dim,
        "head": cfg.head.model_dump(),
        "query_max_length": cfg.query_max_length,
        "listing_max_length": cfg.listing_max_length,
        "listing_fields": list(cfg.listing_fields),
        "serve": "int8" if export.int8 else "fp32",
        "int8": int8,
        "listing_encoder": listing_encoder,
        "service": service.model_dump(),
        "n_listings": n_listings,
        "files": file_hashes(staging),
    }
    write_manifest(manifest, staging)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return manifest


def file_hashes(export_dir: Path) -> dict[str, str]:
    return {
        f.name: _sha256(f)
        for f in sorted(export_dir.iterdir())
        if f.is_file() and f.name != MANIFEST and not f.name.startswith(".")
    }


def write_manifest(manifest: dict, export_dir: Path) -> None:
    with atomic_path(export_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

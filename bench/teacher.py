"""Teacher benchmark (on demand, not in `dvc repro`): `python -m bench.teacher`.

Writes metrics/bench_teacher.json with ratios measured in the same run on the same pairs and
model (SmolLM2-135M from models/base/smollm2_135m; converted into a temporary folder from the
packaged GGUF when the pipeline has not converted it, i.e. when cpu_demo uses another teacher):
- one-forward-pass label scoring vs generate-then-parse (pairs/s, ratio);
- length-sorted vs unsorted batches of the one-pass scorer (ratio);
- SFT training tokens/s and the process's peak resident memory;
- `cross_encoder`: bulk scoring of the CPU default teacher (minilm_cross_encoder: the trained
  export when the pipeline made one, else the packaged MiniLM with an untrained head) with
  ONNX Runtime (length-bucketed batches; fp32 and int8, with and without the transformer
  graph fusion, per-tensor and per-channel int8 weights, with and without spinning threads:
  `ONNX_VARIANTS`) against the current `hf` path on the same pairs, interleaved rounds:
  pairs/s ratios and parity (max |dp|, argmax agreement, macro-F1 change against the golden
  labels).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from relevance_kit.annotate.llama_server import packaged_smollm2_gguf
from relevance_kit.config import RelevanceConfig, compose, validate
from relevance_kit.evaluation.metrics import classification_report
from relevance_kit.io import read_parquet, write_json
from relevance_kit.teacher.encoding import IGNORE, Pair, collate, pairs_from_frames
from relevance_kit.teacher.kinds import CausalLM, CrossEncoder
from relevance_kit.teacher.models import (
    TeacherBundle,
    convert_gguf,
    load_pretrained,
    minilm_path,
    set_trainable,
)
from relevance_kit.teacher.modules import target_token_loss
from relevance_kit.teacher.onnx_scoring import OnnxCrossEncoderScorer
from relevance_kit.teacher.scoring import HFScorer


def timed(fn: object, *args: object) -> tuple[object, float]:
    started = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return out, time.perf_counter() - started


def generate_then_parse(
    cfg: RelevanceConfig,
    bundle: TeacherBundle,
    pairs: list[Pair],
    batch_size: int,
    max_new_tokens: int,
) -> list[str | None]:
    """The slow way: greedy-generate a few tokens per pair and parse a label id from them."""
    tok = bundle.tokenizer
    renderer = bundle.kind.encoder(cfg, bundle).renderer
    tok.padding_side = "left"
    labels = sorted(
        cfg.taxonomy.ids, key=len, reverse=True
    )  # `partially_relevant` before `relevant`
    found: list[str | None] = []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            texts = [renderer.text(p) for p in pairs[start : start + batch_size]]
            batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            out = bundle.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id or tok.eos_token_id,
            )
            for text in tok.batch_decode(
                out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
            ):
                found.append(
                    next(
                        (
                            label
                            for label in labels
                            if label.replace("_", " ") in text.replace("_", " ")
                        ),
                        None,
                    )
                )
    tok.padding_side = "right"
    return found


def training_throughput(
    cfg: RelevanceConfig, bundle: TeacherBundle, pairs: list[Pair], batch_size: int, steps: int
) -> dict[str, float]:
    """Tokens/s of SFT steps (forward, backward, AdamW) with the configured trainable layers."""
    encoder = bundle.kind.encoder(cfg, bundle)
    model = set_trainable(bundle, cfg.teacher.lora, cfg.teacher.trainable_layers).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    features = [encoder.encode(p, with_target=True) for p in pairs]
    pad = bundle.tokenizer.pad_token_id or 0
    tokens, started = 0, time.perf_counter()
    for step in range(steps):
        chunk = features[(step * batch_size) % len(features) :][:batch_size]
        batch = collate(chunk, pad)
        loss = target_token_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(batch["attention_mask"].sum())
    seconds = time.perf_counter() - started
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "tokens_per_second": tokens / seconds,
        "steps": steps,
        "batch_size": batch_size,
        "seconds": seconds,
        "trainable_parameters": trained,
        "target_mask_ignore_id": IGNORE,
    }


def measure(
    cfg: RelevanceConfig,
    bundle: TeacherBundle,
    pairs: list[Pair],
    batch_size: int,
    train_steps: int,
) -> dict:
    """Every figure of the benchmark, on the same pairs and model."""
    bundle.model.eval()
    sorted_scorer = HFScorer(cfg, bundle, batch_size, sort_by_length=True)
    HFScorer(cfg, bundle, batch_size).score(pairs[:batch_size])  # warm-up
    probs, one_pass_s = timed(sorted_scorer.score, pairs)
    _, unsorted_s = timed(HFScorer(cfg, bundle, batch_size, sort_by_length=False).score, pairs)
    parsed, generate_s = timed(generate_then_parse, cfg, bundle, pairs, batch_size, 8)
    train = training_throughput(cfg, bundle, pairs, batch_size, train_steps)
    n = len(pairs)
    lengths = [
        len(bundle.kind.encoder(cfg, bundle).encode(p, with_target=False)["input_ids"])
        for p in pairs
    ]
    return {
        "model": cfg.teacher.model, "pairs": n, "batch_size": batch_size, "torch_threads": torch.get_num_threads(),
        "prompt_tokens": {"mean": float(np.mean(lengths)), "min": int(min(lengths)), "max": int(max(lengths))},
        "one_pass_pairs_per_second": n / one_pass_s,
        "generate_then_parse_pairs_per_second": n / generate_s,
        "one_pass_speedup_vs_generate": generate_s / one_pass_s,
        "generate_unparseable_share": sum(p is None for p in parsed) / n,
        "unsorted_pairs_per_second": n / unsorted_s,
        "length_sorted_speedup": unsorted_s / one_pass_s,
        "probabilities_sum_to_one": bool(np.allclose(np.asarray(probs).sum(1), 1.0)),
        "train": train,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


# ONNX Runtime variants of the cross-encoder, each an `inference` override; the last is
# conf/inference/onnx.yaml's settings. Every one is timed against `hf` in the same rounds.
_ONE_BATCH_AT_A_TIME = {"allow_spinning": True, "parallel_batches": False}
ONNX_VARIANTS = {
    "onnx_fp32": {"int8": False, "optimize": False, **_ONE_BATCH_AT_A_TIME},
    "onnx_fp32_fused": {"int8": False, "optimize": True, **_ONE_BATCH_AT_A_TIME},
    "onnx_int8": {"int8": True, "optimize": False, "int8_per_channel": False, **_ONE_BATCH_AT_A_TIME},
    "onnx_int8_pc": {"int8": True, "optimize": False, "int8_per_channel": True, **_ONE_BATCH_AT_A_TIME},
    "onnx_int8_fused": {"int8": True, "optimize": True, "int8_per_channel": False, **_ONE_BATCH_AT_A_TIME},
    "onnx_int8_fused_pc": {"int8": True, "optimize": True, "int8_per_channel": True, **_ONE_BATCH_AT_A_TIME},
    "onnx_int8_fused_pc_no_spinning": {"int8": True, "optimize": True, "int8_per_channel": True, "allow_spinning": False, "parallel_batches": False},
    "onnx_int8_fused_pc_parallel_batches": {"int8": True, "optimize": True, "int8_per_channel": True, "allow_spinning": False, "parallel_batches": True},
}  # fmt: skip
SERVED = "onnx_int8_fused_pc_parallel_batches"


def cross_encoder_bulk(
    pairs: list[Pair], labels: list[str], batch_size: int, rounds: int = 3
) -> dict:
    """ONNX Runtime variants against the `hf` path (the reference) on the same pairs: each
    round runs every scorer once, in a rotated order, so all see the same background load
    on a shared machine; pairs/s from each one's median pass."""
    cfg = validate(compose_yaml(["teacher=minilm_cross_encoder", "inference=onnx"]))
    trained = Path(cfg.paths.models) / "teacher" / cfg.teacher.name / "export"
    folder = trained if (trained / "config.json").exists() else Path(minilm_path())
    bundle = load_pretrained(CrossEncoder(), str(folder), cfg.taxonomy.ids)
    scorers: dict = {"hf": HFScorer(cfg, bundle, batch_size, sort_by_length=True)}
    for name, update in ONNX_VARIANTS.items():
        inference = cfg.inference.model_copy(update={**update, "batch_size": batch_size})
        scorers[name] = OnnxCrossEncoderScorer(cfg, bundle, inference)
    probs = {name: scorer.score(pairs) for name, scorer in scorers.items()}  # also a warm-up
    names, seconds = list(scorers), {name: [] for name in scorers}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            seconds[name].append(timed(scorers[name].score, pairs)[1])
    gold = [p.label for p in pairs]

    def macro_f1(p: np.ndarray) -> float:
        return classification_report(gold, [labels[i] for i in p.argmax(1)], labels)["macro_f1"]

    ref, ref_s, ref_f1 = probs["hf"], float(np.median(seconds["hf"])), macro_f1(probs["hf"])
    result: dict = {
        "model": str(folder) if folder == trained else "packaged MiniLM, untrained head (no trained teacher export here)",
        "pairs": len(pairs), "batch_size": batch_size, "threads": torch.get_num_threads(),
        "rounds": rounds, "load_average": os.getloadavg(),
        "reference": "hf: transformers in process, length-sorted batches (the current path)",
        "hf_pairs_per_second": len(pairs) / ref_s, "hf_golden_macro_f1": ref_f1,
        "served": f"{SERVED} (conf/inference/onnx.yaml)",
    }  # fmt: skip
    for name, update in ONNX_VARIANTS.items():
        p, s = probs[name], float(np.median(seconds[name]))
        f1 = macro_f1(p)
        result[name] = {
            "settings": update,
            "pairs_per_second": len(pairs) / s,
            "speedup_vs_hf": ref_s / s,
            "parity_max_abs_dp": float(np.abs(p - ref).max()),
            "parity_argmax_agreement": float((p.argmax(1) == ref.argmax(1)).mean()),
            "golden_macro_f1": f1,
            "macro_f1_change_vs_hf": f1 - ref_f1,
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default="metrics/bench_teacher.json")
    parser.add_argument("--cross-encoder-pairs", type=int, default=256)
    parser.add_argument("--cross-encoder-rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=["all", "cross_encoder"],
        default="all",
        help="cross_encoder: skip the SmolLM2 figures",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = validate(compose_yaml(["teacher=smollm2_135m"]))
    prepared = Path(cfg.paths.prepared)
    golden_all = read_parquet(Path(cfg.paths.golden) / "golden.parquet")
    queries, listings = (
        read_parquet(prepared / "queries.parquet"),
        read_parquet(prepared / "listings.parquet"),
    )
    golden = golden_all.sample(min(args.pairs, len(golden_all)), random_state=0)
    pairs = pairs_from_frames(golden, queries, listings, "golden sample")
    result = {}
    if args.only == "all":
        with tempfile.TemporaryDirectory() as scratch:  # holds a converted model while it is in use
            model_dir = Path(cfg.teacher.model)
            if not (model_dir / "config.json").exists():
                model_dir = Path(scratch) / "smollm2_135m"
                convert_gguf(packaged_smollm2_gguf(), model_dir)
            bundle = load_pretrained(CausalLM(), str(model_dir), cfg.taxonomy.ids)
            result = measure(cfg, bundle, pairs, args.batch_size, args.train_steps)
    ce_golden = golden_all.sample(min(args.cross_encoder_pairs, len(golden_all)), random_state=1)
    ce_pairs = pairs_from_frames(ce_golden, queries, listings, "golden sample")
    result["cross_encoder"] = cross_encoder_bulk(
        ce_pairs, cfg.taxonomy.ids, 32, args.cross_encoder_rounds
    )
    write_json(result, args.output)
    print(result)


def compose_yaml(overrides: list[str]) -> dict:
    import yaml

    return yaml.safe_load(compose(overrides))


if __name__ == "__main__":
    main()

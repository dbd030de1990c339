"""Scoring = one forward pass: label probabilities from the answer-position logits of the
label verbalizers' first tokens (softmax over those K logits), not generate-then-parse.

Backends (conf/inference/): `hf` in process (batched, length-sorted so a batch pads little),
`openai_compatible` (a vLLM or llama.cpp server: one completion token with logprobs, the
label tokens lifted into the top-k by logit_bias, concurrent requests), and `vllm`'s offline
engine. All receive the same prompt text (`PromptRenderer`) and label-token mapping.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from relevance_kit.config import InferenceConfig, RelevanceConfig
from relevance_kit.errors import ConfigError, DataError
from relevance_kit.teacher.encoding import (
    Pair,
    PromptRenderer,
    collate,
    pairs_from_frames,
    verbalizer_ids,
)
from relevance_kit.teacher.kinds import teacher_kind
from relevance_kit.teacher.models import TeacherBundle, load_pretrained

LOGIT_LIFT = 100.0  # added to every label token's logit: same shift for all, ratios unchanged


class HFScorer:
    """In-process transformers scoring; `sort_by_length` groups similar lengths per batch."""

    def __init__(
        self,
        cfg: RelevanceConfig,
        bundle: TeacherBundle,
        batch_size: int,
        sort_by_length: bool = True,
    ) -> None:
        self.bundle = bundle
        self.encoder = bundle.kind.encoder(cfg, bundle)
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length
        self.pad_id = (
            bundle.tokenizer.pad_token_id if bundle.tokenizer.pad_token_id is not None else 0
        )

    @torch.inference_mode()
    def score(self, pairs: Sequence[Pair], desc: str = "teacher scoring") -> np.ndarray:
        model = self.bundle.model.eval()
        features = [self.encoder.encode(p, with_target=False) for p in pairs]
        order = (
            np.argsort([len(f["input_ids"]) for f in features], kind="stable")
            if self.sort_by_length
            else np.arange(len(features))
        )
        probs = np.empty((len(features), len(self.encoder.labels)))
        device = next(model.parameters()).device
        for start in tqdm(
            range(0, len(order), self.batch_size), desc=desc, unit="batch", leave=False
        ):
            idx = order[start : start + self.batch_size]
            batch = {
                k: v.to(device) for k, v in collate([features[i] for i in idx], self.pad_id).items()
            }
            logits = self.bundle.kind.label_logits(model, batch, self.encoder)
            probs[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return probs


def _softmax(logps: np.ndarray) -> np.ndarray:
    shifted = np.exp(logps - logps.max())
    return shifted / shifted.sum()


class _ServedScorer:
    """What the server and vLLM backends share: the prompt text and the label tokens."""

    def __init__(self, cfg: RelevanceConfig, tokenizer: Any) -> None:
        self.renderer = PromptRenderer(cfg, tokenizer)
        self.labels = cfg.taxonomy.ids
        self.token_ids = [
            ids[0] for ids in verbalizer_ids(tokenizer, self.labels, cfg.teacher.verbalizers)
        ]


class OpenAICompatibleScorer(_ServedScorer):
    """A served model (vLLM `vllm serve <export>` or llama.cpp's server with its GGUF) via the
    completions API, one forward pass per label: `max_tokens=1`, `logprobs=1` and a
    logit_bias that forces that label's token. Servers report the sampled token's logprob
    from the model's own distribution (before logit_bias), and their prefix cache makes the
    K-1 repeats of a prompt cheap. Pairs run concurrently."""

    def __init__(self, cfg: RelevanceConfig, tokenizer: Any, inference: InferenceConfig) -> None:
        from openai import OpenAI

        super().__init__(cfg, tokenizer)
        self.token_text = [tokenizer.decode([t]) for t in self.token_ids]
        key = os.environ.get(inference.api_key_env, "") if inference.api_key_env else ""
        self.client = OpenAI(
            base_url=inference.base_url,
            api_key=key or "not-needed",
            timeout=inference.timeout_s,
            max_retries=3,
        )
        self.model = inference.served_model or self.client.models.list().data[0].id
        self.max_concurrency = inference.max_concurrency

    def score(self, pairs: Sequence[Pair], desc: str = "teacher scoring (server)") -> np.ndarray:
        texts = [self.renderer.text(p) for p in pairs]
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            rows = list(tqdm(pool.map(self._one, texts), total=len(texts), desc=desc, leave=False))
        return np.array(rows).reshape(len(texts), len(self.labels))

    def _one(self, prompt: str) -> list[float]:
        logps = [
            self._forced_logprob(prompt, token_id, text)
            for token_id, text in zip(self.token_ids, self.token_text)
        ]
        return list(_softmax(_check_pre_bias(np.array(logps))))

    def _forced_logprob(self, prompt: str, token_id: int, text: str) -> float:
        response = self.client.completions.create(
            model=self.model, prompt=prompt, max_tokens=1, temperature=0.0, logprobs=1,
            logit_bias={str(token_id): LOGIT_LIFT},
        )  # fmt: skip
        logprobs = response.choices[0].logprobs
        if not logprobs or not logprobs.tokens or logprobs.tokens[0] != text:
            sampled = logprobs.tokens[0] if logprobs and logprobs.tokens else None
            raise DataError(
                f"forced the label token {text!r} but the server returned {sampled!r}: does it serve "
                "the same tokenizer, honour logit_bias and return logprobs?"
            )
        return float(logprobs.token_logprobs[0])


def _check_pre_bias(logps: np.ndarray) -> np.ndarray:
    """Forced tokens all at probability ~1 means the server reported logprobs after the bias."""
    if len(logps) > 1 and np.all(logps > -1e-4):
        raise DataError(
            "the server reports logprobs after logit_bias (every forced label has p≈1); use a server that reports the model's own logprobs"
        )
    return logps


class VLLMScorer(_ServedScorer):
    """vLLM's offline engine on the exported model folder (GPU). Same prompts, label tokens
    and forced-choice scheme as the server backend: per pair, K one-token requests that each
    force one label token; vLLM reports the sampled token's raw logprob (its default
    logprobs mode) and its prefix cache shares the prompt's forward pass."""

    def __init__(
        self, cfg: RelevanceConfig, export_dir: Path, tokenizer: Any, inference: InferenceConfig
    ) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise ConfigError(
                "inference.backend = 'vllm' needs the vllm package (pip install 'relevance-kit[vllm]', CUDA GPU)"
            ) from exc
        super().__init__(cfg, tokenizer)
        self.llm = LLM(
            model=str(export_dir),
            tensor_parallel_size=inference.tensor_parallel_size,
            enable_prefix_caching=True,
        )
        self.params = [
            SamplingParams(max_tokens=1, temperature=0.0, logprobs=1, logit_bias={t: LOGIT_LIFT})
            for t in self.token_ids
        ]
        self.batch_size = inference.batch_size

    def score(self, pairs: Sequence[Pair], desc: str = "teacher scoring (vllm)") -> np.ndarray:
        texts = [self.renderer.text(p) for p in pairs]
        k = len(self.token_ids)
        rows = []
        for start in tqdm(range(0, len(texts), self.batch_size), desc=desc, leave=False):
            batch = texts[start : start + self.batch_size]
            prompts = [text for text in batch for _ in range(k)]
            outputs = self.llm.generate(prompts, self.params * len(batch), use_tqdm=False)
            for i in range(len(batch)):
                logps = []
                for j, token_id in enumerate(self.token_ids):
                    out = outputs[i * k + j].outputs[0]
                    if out.token_ids[0] != token_id:
                        raise DataError(
                            f"vLLM sampled token {out.token_ids[0]} where label token {token_id} was forced"
                        )
                    logps.append(out.logprobs[0][token_id].logprob)
                rows.append(_softmax(_check_pre_bias(np.array(logps))))
        return np.array(rows)


Scorer = HFScorer | OpenAICompatibleScorer | VLLMScorer


def make_scorer(cfg: RelevanceConfig, export_dir: Path, inference: InferenceConfig) -> Scorer:
    """The configured backend over a trained teacher's export folder. The served backends
    need only its tokenizer (the label tokens); a cross-encoder has no label tokens to
    serve, so it scores in process only."""
    kind = teacher_kind(cfg.teacher)
    if inference.backend == "hf":
        return HFScorer(
            cfg, load_pretrained(kind, export_dir, cfg.taxonomy.ids), inference.batch_size
        )
    if inference.backend == "onnx":
        if kind.generative:
            raise ConfigError(
                f"inference.backend = 'onnx' scores cross-encoder teachers; teacher {cfg.teacher.name!r} is a {type(kind).__name__}: use inference=hf or a server"
            )
        from relevance_kit.teacher.onnx_scoring import OnnxCrossEncoderScorer

        return OnnxCrossEncoderScorer(
            cfg, load_pretrained(kind, export_dir, cfg.taxonomy.ids), inference
        )
    if not kind.generative:
        raise ConfigError(
            f"inference.backend = {inference.backend!r} serves generative teachers; teacher {cfg.teacher.name!r} is a {type(kind).__name__}: use inference=hf"
        )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    if inference.backend == "openai_compatible":
        return OpenAICompatibleScorer(cfg, tokenizer, inference)
    return VLLMScorer(cfg, export_dir, tokenizer, inference)


def score_frame(
    scorer: Scorer, pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame, where: str
) -> np.ndarray:
    """Label probabilities (n, K) for the (query_id, listing_id) rows of `pairs`."""
    return scorer.score(
        pairs_from_frames(pairs, queries, listings, where), desc=f"teacher scoring: {where}"
    )

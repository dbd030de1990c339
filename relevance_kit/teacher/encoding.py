"""From (query, listing[, label]) to model inputs: one prompt rendering for training and for
every scoring backend (hf, OpenAI-compatible server, vLLM), so they score the same text.

Causal/vision teachers: prompt = the cascade's prompt (relevance_kit.prompts) ending with the
answer prefix; target = the label verbalizer (then, by config, the annotator's rationale);
the loss covers target tokens only. The label's probability is read at the answer position
from the logits of the verbalizers' first tokens, which must therefore be distinct.
Cross-encoders: (query, listing text) as a sentence pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from relevance_kit.config import RelevanceConfig
from relevance_kit.errors import ConfigError, DataError
from relevance_kit.prompts import render_listing, sanitize, system_prompt, user_prompt
from relevance_kit.schemas import PAIR_KEY, require_columns
from relevance_kit.teacher.models import TeacherBundle

IGNORE = -100  # label id the loss skips


@dataclass
class Pair:
    query: str
    listing: Mapping[str, Any]
    label: str | None = None
    rationale: str | None = None
    images: list[str] = field(default_factory=list)


def pairs_from_frames(
    pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame, where: str
) -> list[Pair]:
    """Join pair rows (query_id, listing_id[, label, rationale]) with the catalogue; unknown
    ids fail naming the file and row. Listing images are the `image_urls` that are local files."""
    require_columns(pairs, PAIR_KEY, where)
    query_text = dict(zip(queries["query_id"], queries["text"]))
    listing_rows = listings.set_index("listing_id")
    out = []
    for row_no, row in enumerate(pairs.itertuples(index=False)):
        if row.query_id not in query_text or row.listing_id not in listing_rows.index:
            raise DataError(
                f"{where}: row {row_no}: unknown query_id {row.query_id!r} or listing_id {row.listing_id!r}"
            )
        listing = listing_rows.loc[row.listing_id].to_dict()
        urls = listing.get("image_urls")
        images = [u for u in (list(urls) if urls is not None else []) if Path(str(u)).is_file()]
        rationale = getattr(row, "rationale", None)
        out.append(
            Pair(
                query_text[row.query_id],
                listing,
                getattr(row, "label", None),
                rationale if isinstance(rationale, str) else None,
                images,
            )
        )
    return out


def verbalizer_ids(
    tokenizer: Any, labels: Sequence[str], verbalizers: Mapping[str, str]
) -> list[list[int]]:
    """Token ids of each label's answer text (` <verbalizer>`); their first tokens must be
    distinct, else one forward pass cannot tell the labels apart."""
    unknown = sorted(set(verbalizers) - set(labels))
    if unknown:
        raise ConfigError(
            f"teacher.verbalizers names label(s) {unknown} not in the taxonomy {list(labels)}"
        )
    ids = [
        tokenizer(" " + verbalizers.get(label, label), add_special_tokens=False)["input_ids"]
        for label in labels
    ]
    empty = [label for label, tokens in zip(labels, ids) if not tokens]
    if empty:
        raise ConfigError(f"teacher.verbalizers: label(s) {empty} tokenize to nothing")
    firsts: dict[int, list[str]] = {}
    for label, tokens in zip(labels, ids):
        firsts.setdefault(tokens[0], []).append(label)
    clashes = {tokenizer.convert_ids_to_tokens(t): ls for t, ls in firsts.items() if len(ls) > 1}
    if clashes:
        detail = "; ".join(
            f"labels {ls} all start with token {tok!r}" for tok, ls in clashes.items()
        )
        raise ConfigError(
            f"teacher.verbalizers: first tokens must be distinct for this tokenizer: {detail}; set teacher.verbalizers to texts that start differently"
        )
    return ids


class PromptRenderer:
    """The teacher's prompt text for a pair (what a server receives verbatim)."""

    def __init__(self, cfg: RelevanceConfig, tokenizer: Any) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.system = system_prompt(cfg.prompt, cfg.taxonomy, cfg.guidelines.current)

    def text(self, pair: Pair) -> str:
        t = self.cfg.teacher
        if t.prompt_style == "compact":
            user = f"Labels: {', '.join(self.cfg.taxonomy.ids)}\n{user_prompt(self.cfg.prompt, pair.query, pair.listing, t.listing_max_chars)}"
            messages = [{"role": "user", "content": self._with_images(user, pair)}]
        else:
            user = user_prompt(self.cfg.prompt, pair.query, pair.listing, t.listing_max_chars)
            messages = [
                {"role": "system", "content": self.system},
                {"role": "user", "content": self._with_images(user, pair)},
            ]
        if getattr(self.tokenizer, "chat_template", None):
            head = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            head = "\n\n".join(m["content"] for m in messages) + "\n\n"
        return head + t.answer_prefix

    def _with_images(self, text: str, pair: Pair) -> str:
        """Image placeholders before the text (Qwen-VL style); the processor expands them."""
        if not self.cfg.teacher.sees_images or not pair.images:
            return text
        return "<|vision_start|><|image_pad|><|vision_end|>" * len(pair.images) + text


class CausalEncoder:
    """Token ids for causal (and vision) teachers: prompt ids + target ids, loss mask, and the
    answer position (last prompt token), kept within `max_length` by cutting the prompt's
    middle (the instructions at the start and the answer cue at the end survive)."""

    def __init__(self, cfg: RelevanceConfig, bundle: TeacherBundle) -> None:
        self.cfg = cfg
        self.bundle = bundle
        self.renderer = PromptRenderer(cfg, bundle.tokenizer)
        self.labels = cfg.taxonomy.ids
        self.target_ids = verbalizer_ids(bundle.tokenizer, self.labels, cfg.teacher.verbalizers)
        self.first_token_ids = [ids[0] for ids in self.target_ids]

    def encode(self, pair: Pair, with_target: bool) -> dict[str, Any]:
        tok = self.bundle.tokenizer
        features: dict[str, Any] = {}
        text = self.renderer.text(pair)
        if self.bundle.processor is not None and pair.images:
            from PIL import Image

            images = [Image.open(p).convert("RGB") for p in pair.images]
            out = self.bundle.processor(text=[text], images=images, return_tensors="pt")
            prompt = out["input_ids"][0].tolist()
            features["pixel_values"] = out["pixel_values"]
            features["image_grid_thw"] = out["image_grid_thw"]
        else:
            prompt = tok(text, add_special_tokens=False)["input_ids"]
            if tok.bos_token_id is not None and getattr(tok, "add_bos_token", False):
                prompt = [tok.bos_token_id, *prompt]
        target: list[int] = []
        if with_target and pair.label is not None:
            target = list(self.target_ids[self._label_index(pair.label)])
            if self.cfg.teacher.rationale_in_target and pair.rationale:
                target += tok("\nRationale: " + sanitize(pair.rationale), add_special_tokens=False)[
                    "input_ids"
                ]
            if tok.eos_token_id is not None:
                target.append(tok.eos_token_id)
            target = target[: max(1, self.cfg.teacher.max_length // 4)]
        prompt = self._fit(
            prompt, self.cfg.teacher.max_length - len(target), "pixel_values" in features
        )
        features["input_ids"] = prompt + target
        features["labels"] = [IGNORE] * len(prompt) + target
        features["answer_index"] = len(prompt) - 1
        if pair.label is not None:
            features["y"] = self._label_index(pair.label)
        return features

    def _fit(self, ids: list[int], budget: int, has_images: bool) -> list[int]:
        if len(ids) <= budget:
            return ids
        if has_images:  # cutting would drop image tokens the pixel values still expect
            raise DataError(
                f"a prompt with images has {len(ids)} tokens, above teacher.max_length; raise it or lower teacher.listing_max_chars"
            )
        tail = min(64, budget // 2)
        return ids[: budget - tail] + ids[-tail:]

    def _label_index(self, label: str) -> int:
        if label not in self.labels:
            raise DataError(f"label {label!r} is not in the taxonomy {self.labels}")
        return self.labels.index(label)


class CrossEncoderEncoder:
    """(query, listing text) sentence pairs for a sequence classifier."""

    def __init__(self, cfg: RelevanceConfig, bundle: TeacherBundle) -> None:
        self.cfg = cfg
        self.tokenizer = bundle.tokenizer
        self.labels = cfg.taxonomy.ids

    def encode(self, pair: Pair, with_target: bool) -> dict[str, Any]:
        listing = render_listing(pair.listing, self.cfg.teacher.listing_max_chars).replace(
            "\n", " | "
        )
        enc = self.tokenizer(
            pair.query, listing, truncation="only_second", max_length=self.cfg.teacher.max_length
        )
        features = {"input_ids": enc["input_ids"], "token_type_ids": enc.get("token_type_ids")}
        if pair.label is not None:
            if pair.label not in self.labels:
                raise DataError(f"label {pair.label!r} is not in the taxonomy {self.labels}")
            features["y"] = self.labels.index(pair.label)
        return features


def collate(features: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch (so positions are exact and the answer index is each row's last
    prompt token); image tensors concatenated in row order, as Qwen-VL expects."""
    width = max(len(f["input_ids"]) for f in features)
    n = len(features)
    batch: dict[str, torch.Tensor] = {
        "input_ids": torch.full((n, width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((n, width), dtype=torch.long),
    }
    if "labels" in features[0]:
        batch["labels"] = torch.full((n, width), IGNORE, dtype=torch.long)
    if features[0].get("token_type_ids") is not None:
        batch["token_type_ids"] = torch.zeros((n, width), dtype=torch.long)
    for i, f in enumerate(features):
        length = len(f["input_ids"])
        batch["input_ids"][i, :length] = torch.tensor(f["input_ids"])
        batch["attention_mask"][i, :length] = 1
        if "labels" in batch:
            batch["labels"][i, :length] = torch.tensor(f["labels"])
        if "token_type_ids" in batch:
            batch["token_type_ids"][i, :length] = torch.tensor(f["token_type_ids"])
    if "answer_index" in features[0]:
        batch["answer_index"] = torch.tensor([f["answer_index"] for f in features])
    if all("y" in f for f in features):
        batch["y"] = torch.tensor([f["y"] for f in features])
    images = [f for f in features if "pixel_values" in f]
    if images:
        batch["pixel_values"] = torch.cat([f["pixel_values"] for f in images])
        batch["image_grid_thw"] = torch.cat([f["image_grid_thw"] for f in images])
    return batch

"""The teacher's label logits from one forward pass, as scoring (inference) and training
both compute them. No Lightning here: the scoring path (stage teacher_label, the daily
judge) does not import the training framework."""

from __future__ import annotations

import torch
from torch import nn

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values", "image_grid_thw")


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


def kept_logits(
    model: nn.Module, batch: dict[str, torch.Tensor], keep: torch.Tensor
) -> torch.Tensor:
    """Logits at positions `keep` only; models that ignore `logits_to_keep` (some
    vision-language ones) return every position, which are then indexed here."""
    logits = model(**model_inputs(batch), logits_to_keep=keep).logits
    return logits if logits.shape[1] == len(keep) else logits[:, keep]


def causal_label_logits(
    model: nn.Module, batch: dict[str, torch.Tensor], first_token_ids: list[int]
) -> torch.Tensor:
    """Logits of each label's first verbalizer token at each row's answer position, from one
    forward pass that computes the vocabulary projection only at those positions."""
    positions = batch["answer_index"]
    keep = torch.unique(positions)
    logits = kept_logits(model, batch, keep)
    column = torch.searchsorted(keep, positions)
    rows = logits[torch.arange(len(positions)), column]
    return rows[:, first_token_ids].float()


def cross_encoder_label_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**model_inputs(batch)).logits.float()

"""The distillation objective (Hinton et al. 2015), with per-pair class weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(
    logits: torch.Tensor,
    soft: torch.Tensor,
    hard: torch.Tensor,
    weight: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """alpha * T^2 * KL(soft_T || student_T) + (1 - alpha) * CE(student, hard), weighted per
    pair by `weight`; pairs whose hard label is negative contribute only the KL term.

    soft_T is the teacher distribution sharpened or flattened at T (p^(1/T), renormalised);
    T^2 keeps the KL gradients on the same scale as the CE term whatever T is.
    """
    teacher = F.softmax(soft.clamp_min(1e-12).log() / temperature, dim=-1)
    student = F.log_softmax(logits / temperature, dim=-1)
    kl = F.kl_div(student, teacher, reduction="none").sum(dim=-1) * temperature**2
    has_hard = hard >= 0
    ce = F.cross_entropy(logits, hard.clamp_min(0), reduction="none") * has_hard
    per_pair = alpha * kl + (1.0 - alpha) * ce
    return (per_pair * weight).sum() / weight.sum()

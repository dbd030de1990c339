"""Lightning modules of the teacher tiers (their label logits: `label_logits.py`).

`TeacherSFTModule`: causal/vision LM, next-token loss on the target tokens only.
`CrossEncoderModule`: sequence classifier, cross-entropy on the label.
Both: optimizer and scheduler from Hydra `_partial_` configs, validation macro-F1 on the
held-out queries, and checkpoints that keep only the trained weights (a LoRA or top-layer
run of a 4B model must not write 8 GB per checkpoint).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from sklearn.metrics import f1_score
from torch import nn

from relevance_kit.teacher.encoding import IGNORE
from relevance_kit.teacher.label_logits import (
    causal_label_logits,
    cross_encoder_label_logits,
    kept_logits,
)


def target_token_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over the target tokens (labels != IGNORE), with the
    vocabulary projection computed only at the positions that predict them: the same value
    as the model's own loss, without materialising (batch × length × vocab) logits."""
    labels = batch["labels"]
    next_labels = torch.full_like(labels, IGNORE)
    next_labels[:, :-1] = labels[:, 1:]
    keep = torch.nonzero((next_labels != IGNORE).any(dim=0)).flatten()
    logits = kept_logits(model, batch, keep)
    return nn.functional.cross_entropy(
        logits.float().flatten(0, 1), next_labels[:, keep].flatten(), ignore_index=IGNORE
    )


class _TeacherModule(L.LightningModule):
    """What both teacher modules share: optimisation, validation macro-F1, slim checkpoints."""

    def __init__(
        self, model: nn.Module, optimizer: dict[str, Any], scheduler: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self.model = (
            model.train()
        )  # from_pretrained leaves eval mode (no dropout); Lightning keeps modes as found
        self.optimizer_cfg = optimizer
        self.scheduler_cfg = scheduler
        self.strict_loading = False  # checkpoints hold only the trained weights
        self._val_probs: list[np.ndarray] = []
        self._val_y: list[np.ndarray] = []

    def label_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._val_probs.append(torch.softmax(self.label_logits(batch), dim=-1).cpu().numpy())
        self._val_y.append(batch["y"].cpu().numpy())
        self.log("val/loss", self.loss(batch), batch_size=len(batch["input_ids"]))

    def on_validation_epoch_end(self) -> None:
        if self._val_probs:
            probs, y = np.concatenate(self._val_probs), np.concatenate(self._val_y)
            k = probs.shape[1]
            self.log(
                "val/macro_f1",
                float(
                    f1_score(y, probs.argmax(1), labels=range(k), average="macro", zero_division=0)
                ),
            )
        self._val_probs.clear()
        self._val_y.clear()

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = instantiate(self.optimizer_cfg)(params)
        if self.scheduler_cfg is None:
            return optimizer
        scheduler = instantiate(self.scheduler_cfg)(
            optimizer, num_training_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trained = {f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if k in trained
        }


class TeacherSFTModule(_TeacherModule):
    """Supervised fine-tuning of a causal or vision LM on prompt → label verbalizer."""

    def __init__(
        self,
        model: nn.Module,
        first_token_ids: list[int],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None,
    ) -> None:
        super().__init__(model, optimizer, scheduler)
        self.first_token_ids = list(first_token_ids)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return target_token_loss(self.model, batch)

    def label_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return causal_label_logits(self.model, batch, self.first_token_ids)


class CrossEncoderModule(_TeacherModule):
    """A sequence classifier over the joint (query, listing) text."""

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(self.label_logits(batch), batch["y"])

    def label_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return cross_encoder_label_logits(self.model, batch)

"""StudentDistillModule: the two-tower student trained with the distillation loss.

Validation reports macro-F1 against the targets' argmax (the teacher, or the annotator
before the teacher exists) on held-out queries, and against the golden set as a second,
monitoring-only loader: the checkpoint is chosen on the first, never on golden.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassF1Score

from relevance_kit.config import StudentConfig
from relevance_kit.student.losses import distillation_loss
from relevance_kit.student.towers import TwoTowerStudent

VAL_NAMES = ("vs_targets", "vs_golden")
MONITOR = "val/macro_f1_vs_targets"


class StudentDistillModule(L.LightningModule):
    def __init__(
        self,
        student: dict[str, Any],
        labels: list[str],
        class_weights: list[float],
        fingerprint: str,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = StudentConfig.model_validate(student)
        self.labels = labels
        self.model = TwoTowerStudent(self.cfg, len(labels)).train()  # hub models load in eval mode
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        self.val_f1 = torch.nn.ModuleList(
            MulticlassF1Score(len(labels), average="macro") for _ in VAL_NAMES
        )

    def forward(
        self, query: dict[str, torch.Tensor], listing: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.model(query, listing)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["query"], batch["listing"])
        classes = torch.where(batch["hard"] >= 0, batch["hard"], batch["soft"].argmax(dim=-1))
        loss = distillation_loss(
            logits,
            batch["soft"],
            batch["hard"],
            self.class_weights[classes],
            self.cfg.loss.alpha,
            self.cfg.loss.temperature,
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=len(classes))
        return loss

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits = self(batch["query"], batch["listing"])
        metric = self.val_f1[dataloader_idx]
        metric.update(logits.argmax(dim=-1), batch["soft"].argmax(dim=-1))
        self.log(
            f"val/macro_f1_{VAL_NAMES[dataloader_idx]}",
            metric,
            add_dataloader_idx=False,
            prog_bar=True,
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        encoders = {
            id(p)
            for tower in (self.model.query_tower, self.model.listing_tower)
            for p in tower.encoder.parameters()
        }
        groups = [
            {"params": [p for p in self.parameters() if id(p) in encoders], "lr": self.cfg.lr},
            {
                "params": [p for p in self.parameters() if id(p) not in encoders],
                "lr": self.cfg.head_lr,
            },
        ]
        return torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay)

"""The `trainer` group (conf/trainer/): Lightning Trainer settings of the trained tiers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from relevance_kit.config.base import Strict

Precision = Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true"]


class TrainerConfig(Strict):
    """The Lightning Trainer both trained tiers (teacher, student) are built with
    (relevance_kit.training.build_trainer): `_target_` and its hardware arguments; each tier
    adds its epochs, callbacks and logger. `name` and `threads` are not Trainer arguments."""

    name: str
    target: str = Field(alias="_target_")
    accelerator: Literal["cpu", "gpu", "auto"]
    devices: Annotated[int, Field(gt=0)]
    strategy: Literal["auto", "ddp", "fsdp"]
    precision: Precision
    accumulate_grad_batches: Annotated[int, Field(gt=0)]
    gradient_clip_val: Annotated[float, Field(gt=0.0)] | None  # None: no clipping
    log_every_n_steps: Annotated[int, Field(gt=0)]
    threads: Annotated[int, Field(gt=0)] | None  # torch CPU threads; None = torch's default

    @model_validator(mode="after")
    def _consistent(self) -> TrainerConfig:
        if self.accelerator == "cpu" and self.precision not in (
            "32-true",
            "bf16-mixed",
            "bf16-true",
        ):
            raise ValueError(
                f"trainer.precision = {self.precision!r} needs a GPU; on cpu use 32-true or bf16-*"
            )
        if self.strategy in ("ddp", "fsdp") and self.accelerator == "cpu":
            raise ValueError(
                f"trainer.strategy = {self.strategy!r} is configured for GPUs here; use accelerator gpu"
            )
        return self

"""What the two trained tiers (teacher, student) share so that a run is reproducible and an
interrupted one resumes to exactly the model an uninterrupted run gives:

- `build_trainer`: the Lightning Trainer of conf/trainer (`_target_`), completed by the tier;
- `split_by_query`: the one train/validation split, by query (GroupShuffleSplit);
- `seed_run`: every seed, deterministic kernels and a fixed thread count, from config;
- `EpochSampler`: the training order of epoch k depends only on (seed, k), so a run resumed
  at the start of epoch k draws what an uninterrupted run draws (a torch generator carried
  across epochs is not in any checkpoint);
- `ReseedEachEpoch`: the same for dropout and every other draw from the global generators;
- `ResumableRun`: a run folder keyed by a fingerprint of everything the model depends on.
  It resumes only an interrupted run of the same fingerprint, from an epoch boundary (the
  partial epoch is redone); a finished run is marked so, and is never "resumed" by a
  forced rerun, which trains from scratch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from hydra.utils import instantiate
from sklearn.model_selection import GroupShuffleSplit
from torch.utils.data import Sampler

from relevance_kit.config.trainer import TrainerConfig
from relevance_kit.errors import DataError
from relevance_kit.io import write_text

LAST = "last.ckpt"
FINGERPRINT = "FINGERPRINT"


def build_trainer(trainer: TrainerConfig, **tier: Any) -> L.Trainer:
    """conf/trainer's Trainer (`_target_` and its arguments: hardware, precision, clipping),
    completed with what the tier being trained decides (epochs, callbacks, logger, folder)."""
    return instantiate(trainer.model_dump(by_alias=True, exclude={"name", "threads"}), **tier)


def split_by_query(
    pairs: pd.DataFrame, fraction: float, seed: int, what: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and validation pairs with no query on both sides (about `fraction` of the
    queries held out); `what` names the pairs in the error."""
    if pairs["query_id"].nunique() < 2:
        raise DataError(
            f"{what}: labels on at least 2 queries are needed to hold one out; got {pairs['query_id'].nunique()}"
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train_idx, val_idx = next(splitter.split(pairs, groups=pairs["query_id"]))
    return pairs.iloc[train_idx].reset_index(drop=True), pairs.iloc[val_idx].reset_index(drop=True)


def seed_run(seed: int, threads: int | None, accelerator: str) -> None:
    """Seed python, numpy, torch and dataloader workers; deterministic kernels (strict on
    CPU, warn-only elsewhere: some CUDA kernels have no deterministic variant); the torch
    thread count from `trainer.threads` (float sums depend on how work is split)."""
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=accelerator != "cpu")
    L.seed_everything(seed, workers=True, verbose=False)


def fingerprint(settings: Any, *frames: pd.DataFrame) -> str:
    """A hash of the settings (JSON) and the training data: what a checkpoint depends on."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for frame in frames:
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


class EpochSampler(Sampler[int]):
    """A permutation of the dataset (or, with `weights`, a draw with replacement) seeded by
    (seed, epoch). Lightning calls `set_epoch` at the start of every epoch, also after a
    resume, so epoch k's order never depends on the epochs run in this process."""

    def __init__(
        self, n: int, seed: int, weights: Sequence[float] | torch.Tensor | None = None
    ) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is None:
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=generator)
        return iter(order.tolist())


class ReseedEachEpoch(L.Callback):
    """Reseed the global generators (dropout, ...) from (seed, epoch) at each epoch start."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        L.seed_everything(self.seed * 100_003 + trainer.current_epoch, workers=True, verbose=False)


def epoch_checkpoint(dirpath: Path) -> L.pytorch.callbacks.ModelCheckpoint:
    """`last.ckpt`, rewritten at the end of every training epoch and never mid-epoch (the
    dataloader's position inside an epoch is not resumable). A top-1 checkpoint without a
    monitor, not `save_last`: Lightning writes `last` only when a top-k one was saved."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(
        dirpath=dirpath, filename=LAST.removesuffix(".ckpt"), save_top_k=1, save_on_train_epoch_end=True,
        enable_version_counter=False,
    )  # fmt: skip


class ResumableRun:
    """A run folder: `FINGERPRINT` (what the run trains), `last.ckpt` (the last finished
    epoch), `COMPLETE` once the run's outputs are written."""

    def __init__(self, run_dir: Path, fingerprint: str, what: str) -> None:
        self.dir, self.fingerprint, self.what = Path(run_dir), fingerprint, what

    def start(self) -> str | None:
        """The checkpoint to resume from: `last.ckpt` of an interrupted run of the same
        fingerprint. Otherwise (no run, another fingerprint, a finished run) the folder is
        emptied and None returned: train from scratch."""
        stamp, last = self.dir / FINGERPRINT, self.dir / LAST
        interrupted = not (self.dir / "COMPLETE").exists() and last.exists()
        if interrupted and stamp.exists() and stamp.read_text().strip() == self.fingerprint:
            print(f"resuming the interrupted {self.what} run from {last} (its last finished epoch)")
            return str(last)
        shutil.rmtree(self.dir, ignore_errors=True)
        write_text(self.fingerprint + "\n", stamp)
        return None

    def finish(self) -> None:
        """Mark the run finished and drop its checkpoints: nothing is left to resume."""
        for ckpt in self.dir.glob("*.ckpt"):
            ckpt.unlink()
        write_text(self.fingerprint + "\n", self.dir / "COMPLETE")

"""Train a teacher tier on the annotator's labels and export it with its decision biases.

Held-out queries (never pairs) form the validation slice: Lightning reports its macro-F1
each epoch, and after training the exported model's probabilities on it fit the teacher's
judgment: the combined head that weighs them against pair evidence
(relevance_kit.teacher.combined_head) and the per-class decision biases
(relevance_kit.evaluation.decision). A checkpoint is written at the end of
every epoch, keyed by a fingerprint of the settings and the labels, so an interrupted run
resumes from its last finished epoch (redoing the partial one) and ends with the model an
uninterrupted run gives; a run with other settings never resumes a stale one
(relevance_kit.training).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from relevance_kit.config import RelevanceConfig
from relevance_kit.evaluation.decision import DecisionBiases
from relevance_kit.evidence import PairEvidence
from relevance_kit.teacher.combined_head import CombinedHead
from relevance_kit.teacher.encoding import Pair, collate, pairs_from_frames
from relevance_kit.teacher.judgment import TeacherJudgment
from relevance_kit.teacher.models import TeacherBundle, export, load_teacher, set_trainable
from relevance_kit.teacher.scoring import HFScorer
from relevance_kit.training import (
    EpochSampler,
    ReseedEachEpoch,
    ResumableRun,
    build_trainer,
    epoch_checkpoint,
    fingerprint,
    seed_run,
    split_by_query,
)


class TeacherDataModule(L.LightningDataModule):
    """Encoded training and validation pairs; batches are right-padded by `collate`."""

    def __init__(
        self,
        train: list[dict[str, Any]],
        val: list[dict[str, Any]],
        batch_size: int,
        pad_id: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.pad_id, self.seed = batch_size, pad_id, seed

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSampler(len(self.train), self.seed)
        return DataLoader(
            self.train, batch_size=self.batch_size, sampler=sampler, collate_fn=self._collate
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size, collate_fn=self._collate)

    def _collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate(features, self.pad_id)


def settings(cfg: RelevanceConfig) -> dict[str, Any]:
    """What a checkpoint depends on besides the data: resuming one trained under other
    settings would be wrong."""
    return {
        "teacher": cfg.teacher.model_dump(),
        "trainer": cfg.trainer.model_dump(),
        "labels": cfg.taxonomy.ids,
        "seed": cfg.seed,
        "training_seed": cfg.training_seed,
    }


def build_module(cfg: RelevanceConfig, bundle: TeacherBundle, encoder: Any) -> L.LightningModule:
    """The kind's LightningModule over the part of the model that trains."""
    model = set_trainable(bundle, cfg.teacher.lora, cfg.teacher.trainable_layers)
    return bundle.kind.module(model, encoder, cfg.teacher.optimizer, cfg.teacher.scheduler)


def make_trainer(
    cfg: RelevanceConfig, out_dir: Path, checkpoints: Path, logger: Any = None
) -> L.Trainer:
    return build_trainer(
        cfg.trainer, max_epochs=cfg.teacher.epochs, callbacks=[epoch_checkpoint(checkpoints), ReseedEachEpoch(cfg.training_seed)],
        logger=logger if logger is not None else False, default_root_dir=out_dir, enable_model_summary=False,
        num_sanity_val_steps=0,
    )  # fmt: skip


def train_teacher(
    cfg: RelevanceConfig,
    labelled: pd.DataFrame,
    queries: pd.DataFrame,
    listings: pd.DataFrame,
    out_dir: Path,
    logger: Any = None,
) -> dict[str, Any]:
    """Fit the configured teacher on `labelled` (query_id, listing_id, label[, rationale]) and
    write `<out_dir>/export` (model + tokenizer), its judgment (`decision.json` biases and
    `combined_head.json`, relevance_kit.teacher.judgment) and return metrics."""
    t = cfg.teacher
    seed_run(cfg.training_seed, cfg.trainer.threads, cfg.trainer.accelerator)
    train_frame, val_frame = split_by_query(
        labelled, t.validation_fraction, cfg.seed, "the teacher's annotator labels"
    )
    if t.max_train_pairs is not None and len(train_frame) > t.max_train_pairs:
        train_frame = train_frame.sample(t.max_train_pairs, random_state=cfg.seed).reset_index(
            drop=True
        )
    bundle = load_teacher(t, cfg.taxonomy.ids, cfg.training_seed)
    encoder = bundle.kind.encoder(cfg, bundle)
    train_pairs = pairs_from_frames(train_frame, queries, listings, "annotator labels (train)")
    val_pairs = pairs_from_frames(val_frame, queries, listings, "annotator labels (validation)")
    pad_id = bundle.tokenizer.pad_token_id if bundle.tokenizer.pad_token_id is not None else 0
    dm = TeacherDataModule(
        [encoder.encode(p, with_target=True) for p in train_pairs], [encoder.encode(p, with_target=True) for p in val_pairs],
        t.batch_size, pad_id, cfg.training_seed,
    )  # fmt: skip
    module = build_module(cfg, bundle, encoder)
    run = ResumableRun(
        out_dir / "checkpoints", fingerprint(settings(cfg), train_frame, val_frame), "teacher"
    )
    resume = run.start()
    trainer = make_trainer(cfg, out_dir, run.dir, logger)
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=resume)
    train_seconds = time.perf_counter() - started
    bundle.model = (
        module.model.merge_and_unload()
        if hasattr(module.model, "merge_and_unload")
        else module.model
    )
    export(bundle, out_dir / "export")
    judgment, alone, val_seconds = fit_judgment(
        cfg, bundle, val_frame, val_pairs, queries, listings
    )
    judgment.save(out_dir)
    shutil.rmtree(run.dir)  # done: nothing left to resume, and the export is all the output
    n_tokens = sum(len(f["input_ids"]) for f in dm.train) * t.epochs
    return {
        "teacher": t.name,
        "train_pairs": len(train_frame),
        "validation_pairs": len(val_frame),
        "validation_queries": int(val_frame["query_id"].nunique()),
        "train_seconds": round(train_seconds, 1),
        "train_tokens_per_second": round(n_tokens / train_seconds, 1) if train_seconds else None,
        "validation_scoring_seconds": round(val_seconds, 1),
        "global_step": int(trainer.global_step),
        "validation_macro_f1": judgment.biases.validation_macro_f1,
        "validation_macro_f1_teacher_alone": alone,
        "combined_head": judgment.head.to_dict() if judgment.head else None,
        "decision_biases": judgment.biases.to_dict()["biases"],
    }


def fit_judgment(
    cfg: RelevanceConfig, bundle: TeacherBundle, val_frame: pd.DataFrame, val_pairs: list[Pair],
    queries: pd.DataFrame, listings: pd.DataFrame,
) -> tuple[TeacherJudgment, dict[str, Any], float]:  # fmt: skip
    """Score the validation slice with the trained model (the hf scorer); fit the combined
    head there when configured, and tune the decision biases on its out-of-fold probabilities
    (the teacher's own without a head), bagged over query-bootstrap resamples
    (`teacher.bias_bootstrap`). Returns the judgment, what the teacher alone scores on the
    slice (argmax, and with biases of its own) and the seconds spent."""
    t, labels = cfg.teacher, cfg.taxonomy.ids
    started = time.perf_counter()
    probs = HFScorer(cfg, bundle, batch_size=t.batch_size * 2).score(
        val_pairs, desc="validation scoring"
    )
    y, groups = [p.label for p in val_pairs], [p.query for p in val_pairs]

    def tuned(decided_on: np.ndarray) -> DecisionBiases:
        return DecisionBiases(labels).fit(
            decided_on, y, groups, t.bias_bootstrap, cfg.training_seed
        )

    alone = tuned(probs)
    if t.combined_head is None:
        return TeacherJudgment(alone), alone.validation_macro_f1, time.perf_counter() - started
    h = t.combined_head
    query_text = dict(zip(queries["query_id"], queries["text"]))
    evidence = PairEvidence(listings, h.features).frame(val_frame, query_text)
    head = CombinedHead(labels, h.features, h.c)
    out_of_fold = head.out_of_fold(probs, evidence, y, groups, h.folds)
    head.fit(probs, evidence, y)
    judgment = TeacherJudgment(tuned(out_of_fold), head)
    return judgment, alone.validation_macro_f1, time.perf_counter() - started

"""Fit the student: targets + hard labels -> StudentDistillModule -> best checkpoint.

On skewed labels the head's argmax under-predicts the rare classes, so per-class decision
biases (evaluation.decision) are tuned for macro-F1 on the held-out queries and added to the
head's output bias in the saved checkpoint: export, service and evaluation use them unawares.

An interrupted run resumes from `<run_dir>/last.ckpt` (its last finished epoch), but only
when the run's fingerprint (student and trainer config, labels, seed, training data) is
unchanged and the run did not finish: a changed config or a forced rerun starts afresh
(relevance_kit.training), and either gives the model an uninterrupted run gives.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dvclive.lightning import DVCLiveLogger
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from relevance_kit.config import RelevanceConfig
from relevance_kit.errors import ConfigError
from relevance_kit.evaluation.decision import DecisionBiases
from relevance_kit.io import atomic_path, read_parquet
from relevance_kit.schemas import LABELLED_PAIRS, prob_column, read_frame
from relevance_kit.student.data import (
    PairBatchCollator,
    attach_texts,
    make_loader,
    target_classes,
    training_pairs,
)
from relevance_kit.student.module import MONITOR, StudentDistillModule
from relevance_kit.student.skip_init import init_similarity_skip
from relevance_kit.student.towers import TwoTowerStudent, load_tokenizer, output_bias_key
from relevance_kit.training import (
    ReseedEachEpoch,
    ResumableRun,
    build_trainer,
    epoch_checkpoint,
    fingerprint,
    seed_run,
    split_by_query,
)


def class_weights(cfg: RelevanceConfig) -> list[float]:
    """The pinned class weights of the current taxonomy, in label order."""
    pinned = cfg.student.loss.class_weights.get(cfg.taxonomy.name)
    if pinned is None or set(pinned) != set(cfg.taxonomy.ids):
        raise ConfigError(
            f"student.loss.class_weights.{cfg.taxonomy.name} = {pinned}: give one weight for each "
            f"label of taxonomy {cfg.taxonomy.name!r}: {cfg.taxonomy.ids}"
        )
    return [pinned[label] for label in cfg.taxonomy.ids]


def fit_student(cfg: RelevanceConfig, run_dir: Path, live_dir: Path, checkpoint: Path) -> dict:
    """Train, write the best checkpoint (by macro-F1 against the targets on held-out
    queries) to `checkpoint` with its decision biases (tuned on those queries) folded into
    the head, and return the run's summary metrics."""
    s, labels = cfg.student, cfg.taxonomy.ids
    weights = class_weights(cfg)
    prepared = Path(cfg.paths.prepared)
    queries = read_parquet(prepared / "queries.parquet")
    listings = read_parquet(prepared / "listings.parquet")
    pairs = training_pairs(s.targets, s.hard_labels, labels, s.add_hard_labelled_pairs)
    if s.max_train_pairs is not None and len(pairs) > s.max_train_pairs:
        pairs = pairs.sample(s.max_train_pairs, random_state=cfg.seed).reset_index(drop=True)
    train, val = split_by_query(
        attach_texts(pairs, queries, listings, s.listing_fields), s.val_fraction, cfg.seed, "the student's training pairs"
    )  # fmt: skip

    collate = PairBatchCollator(
        load_tokenizer(s.encoder), labels, s.query_max_length, s.listing_max_length
    )
    val_loaders = [make_loader(val, collate, s.batch_size, None, cfg.seed)]
    if s.validate_on_golden:
        golden = golden_pairs(Path(cfg.paths.golden) / "golden.parquet", labels)
        val_loaders.append(
            make_loader(
                attach_texts(golden, queries, listings, s.listing_fields),
                collate,
                s.batch_size,
                None,
                cfg.seed,
            )
        )

    settings = [s.model_dump(), cfg.trainer.model_dump(), labels, cfg.seed, cfg.training_seed]
    run = ResumableRun(run_dir, fingerprint(settings, pairs), "student")
    resume = run.start()
    seed_run(cfg.training_seed, cfg.trainer.threads, cfg.trainer.accelerator)
    module = StudentDistillModule(s.model_dump(), labels, weights, run.fingerprint)
    skip = None  # fitted on a resumed run too (its checkpoint then replaces it): same metrics
    if s.head.similarity_skip:
        skip = init_similarity_skip(
            module.model,
            make_loader(train, collate, s.batch_size, None, cfg.seed),
            target_classes(train, labels),
            weights,
            s.sampling == "balanced",
        )
    best = ModelCheckpoint(dirpath=run_dir, filename="best", monitor=MONITOR, mode="max")
    trainer = build_trainer(
        cfg.trainer,
        max_epochs=s.epochs,
        logger=DVCLiveLogger(
            dir=str(live_dir), save_dvc_exp=False, dvcyaml=False, resume=resume is not None
        ),
        callbacks=[best, epoch_checkpoint(run_dir), ReseedEachEpoch(cfg.training_seed)],
        default_root_dir=run_dir,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(
        module,
        make_loader(train, collate, s.batch_size, s.sampling, cfg.training_seed),
        val_loaders,
        ckpt_path=resume,
    )
    seconds = time.perf_counter() - start
    decision = tune_decision(cfg, module, Path(best.best_model_path), val, collate)
    save_model_only(
        Path(best.best_model_path), checkpoint, None if decision is None else decision.biases
    )
    run.finish()
    classes = np.bincount(target_classes(train, labels), minlength=len(labels))
    return {
        "best_" + MONITOR.replace("/", "_"): float(best.best_model_score),
        **{k.replace("/", "_"): float(v) for k, v in trainer.callback_metrics.items()},
        "train_pairs": len(train),
        "val_pairs": len(val),
        "train_queries": int(train["query_id"].nunique()),
        "hard_labelled_pairs": int((pairs["hard_label"] >= 0).sum()),
        "train_class_counts": dict(zip(labels, classes.tolist())),
        "epochs": s.epochs,
        "fit_seconds": round(seconds, 1),
        "resumed": resume is not None,
        "similarity_skip_init": skip,
        "targets": s.targets,
        **decision_summary(decision),
    }


def tune_decision(
    cfg: RelevanceConfig,
    module: StudentDistillModule,
    best: Path,
    val: pd.DataFrame,
    collate: PairBatchCollator,
) -> DecisionBiases | None:
    """Per-class decision biases for macro-F1 on the held-out queries, scored by the best
    checkpoint (`student.bias_bootstrap` query resamples bagged; None: argmax, no biases).
    A pair's class is its hard label, else its target's argmax: the labels it was trained on."""
    s, labels = cfg.student, cfg.taxonomy.ids
    if s.bias_bootstrap is None:
        return None
    module.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["state_dict"])
    gpu = cfg.trainer.accelerator != "cpu" and torch.cuda.is_available()
    probs = class_probabilities(
        module.model,
        make_loader(val, collate, s.batch_size, None, cfg.seed),
        torch.device("cuda" if gpu else "cpu"),
    )
    return DecisionBiases(labels).fit(
        probs,
        [labels[i] for i in target_classes(val, labels)],
        val["query_id"].tolist(),
        s.bias_bootstrap,
        cfg.training_seed,
    )


@torch.no_grad()
def class_probabilities(
    model: TwoTowerStudent, loader: DataLoader, device: torch.device
) -> np.ndarray:
    """Softmax of the model's logits for every pair the loader yields, in its order."""
    model.eval().to(device)
    batches = [
        model(
            {k: t.to(device) for k, t in b["query"].items()},
            {k: t.to(device) for k, t in b["listing"].items()},
        ).softmax(dim=-1)
        for b in loader
    ]
    return torch.cat(batches).double().cpu().numpy()


def decision_summary(decision: DecisionBiases | None) -> dict:
    """The tuned biases (label -> bias) and validation macro-F1 by argmax and with them."""
    if decision is None:
        return dict.fromkeys(
            ("decision_biases", "validation_macro_f1_argmax", "validation_macro_f1")
        )
    return {
        "decision_biases": decision.to_dict()["biases"],
        "validation_macro_f1_argmax": decision.validation_macro_f1["before"],
        "validation_macro_f1": decision.validation_macro_f1["after"],
    }


MODEL_KEYS = (
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "state_dict",
    "hparams_name",
    "hyper_parameters",
)


def save_model_only(best: Path, checkpoint: Path, biases: np.ndarray | None) -> None:
    """Write the best checkpoint's model (weights, hyperparameters, epoch), the decision
    `biases` (if any) folded into its head, without the training state (optimizer, loops,
    callbacks). That state is not needed to load the model, and its pickled bytes depend on
    whether the run was resumed (a resumed optimizer's state holds strings unpickled from
    `last.ckpt`, memoised differently), so leaving it out makes a resumed run's output
    byte-identical to an uninterrupted one."""
    state = torch.load(best, map_location="cpu", weights_only=False)
    if biases is not None:
        fold_decision_biases(state["state_dict"], biases)
    with atomic_path(checkpoint) as tmp, tmp.open("wb") as out:  # a file object: torch.save
        torch.save(
            {key: state[key] for key in MODEL_KEYS if key in state}, out
        )  # names the archive "archive", not after tmp


def fold_decision_biases(state_dict: dict[str, torch.Tensor], biases: np.ndarray) -> None:
    """Add `biases` to the head's output bias. Logits + b are log-probabilities + b up to
    normalisation, i.e. p'_k ∝ p_k·exp(b_k) (DecisionBiases.apply): the export, the service
    and every evaluation then decide with the tuned biases without knowing of them."""
    key = output_bias_key(state_dict)
    state_dict[key] = state_dict[key] + torch.as_tensor(biases, dtype=state_dict[key].dtype)


def golden_pairs(path: Path, labels: list[str]) -> pd.DataFrame:
    """Golden pairs shaped like training pairs: one-hot target and hard label."""
    golden = read_frame(path, LABELLED_PAIRS)
    codes = golden["label"].map({label: i for i, label in enumerate(labels)}).to_numpy(dtype=int)
    onehot = np.eye(len(labels))[codes]
    return golden[["query_id", "listing_id"]].assign(
        hard_label=codes, **{prob_column(label): onehot[:, i] for i, label in enumerate(labels)}
    )

"""The student's training pairs: distillation targets, hard labels, texts, batches.

`load_targets` is the one entry point for targets: a soft-labels parquet (the teacher's
p_<label> columns) or a judgments parquet (annotator labels, made one-hot and averaged per
pair). Which one is a config value (`student.targets`), so switching from the annotator's
labels to the teacher's soft labels needs no code change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from relevance_kit.errors import DataError
from relevance_kit.io import read_parquet
from relevance_kit.schemas import PAIR_KEY, prob_column, require_columns
from relevance_kit.text import listing_text
from relevance_kit.voting import vote

NO_LABEL = -1


def load_targets(path: str | Path, labels: Sequence[str]) -> pd.DataFrame:
    """query_id, listing_id and one p_<label> column per label (rows sum to 1)."""
    frame = _read(path)
    columns = [prob_column(label) for label in labels]
    if all(c in frame.columns for c in columns):
        if frame.duplicated(PAIR_KEY).any():
            raise DataError(
                f"{path}: duplicate (query_id, listing_id) at row {int(np.argmax(frame.duplicated(PAIR_KEY)))}"
            )
        probs = frame[columns].to_numpy(dtype=np.float64)
        bad = (
            ~np.isfinite(probs).all(axis=1)
            | (np.abs(probs.sum(axis=1) - 1.0) > 1e-3)
            | (probs < 0).any(axis=1)
        )
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{path}: row {row} probabilities {probs[row].tolist()} are not a distribution over {list(labels)}"
            )
        return frame[[*PAIR_KEY, *columns]].reset_index(drop=True)
    if "label" in frame.columns:
        _check_labels(frame, labels, path)
        onehot = (
            pd.get_dummies(frame["label"])
            .reindex(columns=list(labels), fill_value=0)
            .astype(np.float64)
        )
        onehot.columns = columns
        return (
            pd.concat([frame[PAIR_KEY], onehot], axis=1)
            .groupby(PAIR_KEY, as_index=False, sort=False)
            .mean()
        )
    raise DataError(
        f"{path}: neither soft labels (columns {columns}) nor judgments (a 'label' column); found {list(frame.columns)}"
    )


def load_hard_labels(path: str | Path, labels: Sequence[str]) -> pd.DataFrame:
    """query_id, listing_id, hard_label: each pair's vote over its judgments (`voting.vote`,
    ties to the more severe label, i.e. the later one in taxonomy order), pairs sorted."""
    frame = _read(path)
    _check_labels(frame, labels, path)
    table = pd.crosstab([frame["query_id"], frame["listing_id"]], frame["label"])
    table = table.reindex(columns=list(labels), fill_value=0)
    index = {label: i for i, label in enumerate(labels)}
    voted = [vote(dict(zip(labels, row)), labels, "most_severe").label for row in table.to_numpy()]
    return table.index.to_frame(index=False).assign(hard_label=[index[v] for v in voted])


def training_pairs(
    targets_path: str | Path,
    hard_labels_path: str | Path | None,
    labels: Sequence[str],
    add_hard_labelled_pairs: bool,
) -> pd.DataFrame:
    """Targets joined with hard labels where a pair has one (hard_label = NO_LABEL where not);
    optionally judged pairs the targets lack, with their one-hot label as the target."""
    pairs = load_targets(targets_path, labels)
    if hard_labels_path is None:
        return pairs.assign(hard_label=NO_LABEL)
    hard = load_hard_labels(hard_labels_path, labels)
    pairs = pairs.merge(hard, on=PAIR_KEY, how="left")
    if add_hard_labelled_pairs:
        extra = hard.merge(pairs[PAIR_KEY], on=PAIR_KEY, how="left", indicator=True)
        extra = extra[extra["_merge"] == "left_only"].drop(columns="_merge")
        onehot = np.eye(len(labels))[extra["hard_label"].to_numpy(dtype=int)]
        extra = extra.assign(**{prob_column(label): onehot[:, i] for i, label in enumerate(labels)})
        pairs = pd.concat([pairs, extra], ignore_index=True)
    return pairs.assign(hard_label=pairs["hard_label"].fillna(NO_LABEL).astype(int))


def attach_texts(
    pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame, fields: Sequence[str]
) -> pd.DataFrame:
    """Add query_text and listing_text; unknown ids are an error naming them."""
    query_text = dict(zip(queries["query_id"], queries["text"]))
    by_id = listings.set_index("listing_id")
    unknown_q = sorted(set(pairs["query_id"]) - query_text.keys())
    unknown_l = sorted(set(pairs["listing_id"]) - set(by_id.index))
    if unknown_q or unknown_l:
        raise DataError(
            f"training pairs: unknown query ids {unknown_q[:5]}, listing ids {unknown_l[:5]}"
        )
    texts = catalogue_texts(by_id.loc[pairs["listing_id"].unique()].reset_index(), fields)
    return pairs.assign(
        query_text=pairs["query_id"].map(query_text), listing_text=pairs["listing_id"].map(texts)
    )


def catalogue_texts(listings: pd.DataFrame, fields: Sequence[str]) -> dict[str, str]:
    """listing_id -> the listing's text as every tower sees it."""
    require_columns(listings, ["listing_id"], "listings")
    return {row["listing_id"]: listing_text(row, fields) for row in listings.to_dict("records")}


@dataclass
class PairBatchCollator:
    """Tokenizes queries and listings (each with its own max length) and stacks targets."""

    tokenizer: PreTrainedTokenizerBase
    labels: Sequence[str]
    query_max_length: int
    listing_max_length: int

    def __call__(self, rows: list[dict]) -> dict:
        return {
            "query": self._tokens([r["query_text"] for r in rows], self.query_max_length),
            "listing": self._tokens([r["listing_text"] for r in rows], self.listing_max_length),
            "soft": torch.tensor(
                [[r[prob_column(label)] for label in self.labels] for r in rows],
                dtype=torch.float32,
            ),
            "hard": torch.tensor([r["hard_label"] for r in rows], dtype=torch.long),
        }

    def _tokens(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


class PairDataset(Dataset):
    def __init__(self, pairs: pd.DataFrame) -> None:
        self.rows = pairs.to_dict("records")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def target_classes(pairs: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """Each pair's class for weighting: its hard label, else the target's argmax."""
    argmax = pairs[[prob_column(label) for label in labels]].to_numpy().argmax(axis=1)
    hard = pairs["hard_label"].to_numpy()
    return np.where(hard != NO_LABEL, hard, argmax)


def make_loader(
    pairs: pd.DataFrame,
    collate: PairBatchCollator,
    batch_size: int,
    sampling: str | None,
    seed: int,
) -> DataLoader:
    """sampling: None (validation order), "shuffle", or "balanced" (each class drawn equally
    often: the minority Irrelevant class is seen as often as the others). Training orders
    are seeded per epoch (`EpochSampler`), so a resumed run draws what an uninterrupted one does."""
    # Lightning (with training.py) only for training: serving imports this module's texts
    from relevance_kit.training import EpochSampler

    dataset = PairDataset(pairs)
    if sampling is None:
        return DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    weights = None
    if sampling == "balanced":
        classes = target_classes(pairs, collate.labels)
        counts = np.bincount(classes, minlength=len(collate.labels))
        weights = 1.0 / counts[classes]
    sampler = EpochSampler(len(pairs), seed, weights)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)


def _read(path: str | Path) -> pd.DataFrame:
    if not Path(path).exists():
        raise DataError(f"{path}: not found (student.targets / student.hard_labels in params.yaml)")
    frame = read_parquet(path)
    require_columns(frame, PAIR_KEY, path)
    return frame


def _check_labels(frame: pd.DataFrame, labels: Sequence[str], path: str | Path) -> None:
    unknown = ~frame["label"].isin(list(labels))
    if unknown.any():
        row = int(np.argmax(unknown))
        raise DataError(
            f"{path}: row {row} has label {frame['label'].iloc[row]!r}; allowed: {list(labels)}"
        )

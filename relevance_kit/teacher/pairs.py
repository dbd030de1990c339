"""The trained teacher as a PairScorer, the daily judge that monitoring and the A/B analysis
call: each pair is looked up in the label store by (model version, query text, listing
content hash); only the misses are scored (in process, or as a Ray Data job with
`inference=ray`), the teacher's judgment (combined head, decision biases) applied, and stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.errors import DataError
from relevance_kit.labelstore import LabelStore, content_hash, folder_version
from relevance_kit.schemas import PAIR_KEY, prob_column, require_columns
from relevance_kit.teacher.judgment import TeacherJudgment, judgment_files

# (pairs with query_id, listing_id; queries with query_id, text; listings) -> (n, K) probabilities
LabelFn = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], np.ndarray]


class StoredPairs:
    """A PairScorer that scores each (model version, query, listing content) once, ever."""

    def __init__(
        self, label_fn: LabelFn, store: LabelStore, model_version: str, labels: list[str],
        query_text: Mapping[str, str], listings: pd.DataFrame, tier: str = "teacher",
    ) -> None:  # fmt: skip
        self.label_fn = label_fn
        self.store = store
        self.model_version = model_version
        self.labels = labels
        self.query_text = dict(query_text)
        self.listings = listings.drop_duplicates("listing_id").reset_index(drop=True)
        self._row = dict(zip(self.listings["listing_id"], range(len(self.listings))))
        self._hashes: dict[str, str] = {}
        self.tier = tier

    def _hash(self, listing_id: str) -> str:
        if listing_id not in self._hashes:
            self._hashes[listing_id] = content_hash(
                self.listings.iloc[self._row[listing_id]].to_dict()
            )
        return self._hashes[listing_id]

    def score_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        require_columns(pairs, PAIR_KEY, "pairs to score")
        pairs = pairs[PAIR_KEY].reset_index(drop=True)
        for column, known in (("query_id", self.query_text), ("listing_id", self._row)):
            unknown = ~pairs[column].isin(list(known))
            if unknown.any():
                row = int(np.flatnonzero(unknown)[0])
                raise DataError(
                    f"pairs to score: row {row}: {column} {pairs[column].iloc[row]!r} is not in the catalogue / query texts"
                )
        keys = [
            (self.query_text[q], self._hash(lid))
            for q, lid in zip(pairs["query_id"], pairs["listing_id"])
        ]
        found = self.store.get(self.model_version, self.labels, keys)
        todo = pairs.assign(key=keys).drop_duplicates("key")
        todo = todo[[key not in found for key in todo["key"]]].reset_index(drop=True)
        if len(todo):
            queries = pd.DataFrame(
                {"query_id": list(self.query_text), "text": list(self.query_text.values())}
            )
            probs = self.label_fn(todo[PAIR_KEY], queries, self.listings)
            self.store.put(self.model_version, self.labels, list(todo["key"]), probs)
            found.update(zip(todo["key"], probs))
        out = pairs.copy()
        matrix = np.stack([found[key] for key in keys]) if keys else np.zeros((0, len(self.labels)))
        for j, label in enumerate(self.labels):
            out[prob_column(label)] = matrix[:, j]
        return out


def teacher_version(cfg: RelevanceConfig, teacher_dir: Path) -> str:
    """The teacher's model version: its export's bytes, its judgment (decision biases and
    combined head) and the settings that shape what it sees (prompt, guidelines, taxonomy,
    text limits)."""
    extra = {
        "judgment": {p.name: p.read_text() for p in judgment_files(teacher_dir)}, "teacher": cfg.teacher.model_dump(),
        "prompt": cfg.prompt.model_dump(), "guidelines": cfg.guidelines.model_dump(), "labels": cfg.taxonomy.ids,
    }  # fmt: skip
    return folder_version(cfg.teacher.name, teacher_dir / "export", extra)


def load_judgment(cfg: RelevanceConfig, teacher_dir: Path) -> TeacherJudgment:
    """The decision biases and combined head stage train_teacher fitted on its validation slice."""
    head = cfg.teacher.combined_head
    return TeacherJudgment.load(teacher_dir, cfg.taxonomy.ids, head.features if head else None)


def teacher_label_fn(cfg: RelevanceConfig, teacher_dir: Path, work_dir: Path) -> LabelFn:
    """How the misses are scored: `inference=ray` labels them as a Ray Data job over Parquet
    shards under `work_dir`; any other backend scores in process. Either way the teacher's
    judgment is applied to what it returns."""
    judgment = load_judgment(cfg, teacher_dir)
    if cfg.inference.backend == "ray":
        from relevance_kit.teacher.ray_label import label_pairs

        def teacher_probs(
            pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame
        ) -> np.ndarray:
            return label_pairs(
                cfg,
                teacher_dir / "export",
                pairs,
                queries,
                listings,
                work_dir,
                raise_on_failed=True,
            ).probs
    else:
        from relevance_kit.teacher.scoring import make_scorer, score_frame

        scorer = make_scorer(cfg, teacher_dir / "export", cfg.inference)

        def teacher_probs(
            pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame
        ) -> np.ndarray:
            return score_frame(scorer, pairs, queries, listings, "pairs to label")

    def label(pairs: pd.DataFrame, queries: pd.DataFrame, listings: pd.DataFrame) -> np.ndarray:
        query_text = dict(zip(queries["query_id"], queries["text"]))
        return judgment.apply(teacher_probs(pairs, queries, listings), pairs, query_text, listings)

    return label


def teacher_pairs(
    cfg: RelevanceConfig, query_text: Mapping[str, str], listings: pd.DataFrame, job: str
) -> StoredPairs:
    """The configured teacher behind the label store at paths.label_store; `job` names the
    Ray shard folder (e.g. `monitor`), so concurrent jobs never share shards."""
    teacher_dir = Path(cfg.paths.models) / "teacher" / cfg.teacher.name
    if not (teacher_dir / "export").exists():
        raise DataError(
            f"scorer 'teacher': no exported teacher at {teacher_dir / 'export'}; run the train_teacher stage first"
        )
    store = LabelStore(cfg.paths.label_store)
    work_dir = Path(cfg.paths.label_store).parent / "ray_jobs" / job
    return StoredPairs(
        teacher_label_fn(cfg, teacher_dir, work_dir),
        store,
        teacher_version(cfg, teacher_dir),
        cfg.taxonomy.ids,
        query_text,
        listings,
    )

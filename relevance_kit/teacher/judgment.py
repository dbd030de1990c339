"""How the trained teacher turns its probabilities into a judgment: the combined head (when
configured) weighs them against pair evidence, then the decision biases shift them for
macro-F1. Stage train_teacher fits both on the validation slice and saves them beside the
export; every consumer of teacher labels (teacher_label, monitoring, A/B, transfer) applies
them through `TeacherJudgment`, so none can apply one without the other."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

from relevance_kit.errors import DataError
from relevance_kit.evaluation.decision import DecisionBiases
from relevance_kit.evidence import PairEvidence
from relevance_kit.io import write_json
from relevance_kit.teacher.combined_head import CombinedHead

DECISION_FILE = "decision.json"
COMBINED_HEAD_FILE = "combined_head.json"


def judgment_files(teacher_dir: Path) -> list[Path]:
    """The files of a trained teacher's judgment that exist (part of its model version)."""
    return [
        p for p in (teacher_dir / DECISION_FILE, teacher_dir / COMBINED_HEAD_FILE) if p.exists()
    ]


class TeacherJudgment:
    """Decision biases, after the combined head where there is one."""

    def __init__(self, biases: DecisionBiases, head: CombinedHead | None = None) -> None:
        self.biases, self.head = biases, head
        self._evidence: PairEvidence | None = None

    @classmethod
    def neutral(cls, labels: list[str], features: list[str] | None) -> Self:
        """The judgment that changes nothing (zero biases, an identity head over `features`,
        None: no head): an untrained teacher's, for tests and benchmarks."""
        head = CombinedHead.identity(labels, features) if features is not None else None
        return cls(DecisionBiases(labels), head)

    def apply(
        self,
        probs: np.ndarray,
        pairs: pd.DataFrame,
        query_text: Mapping[str, str],
        listings: pd.DataFrame,
    ) -> np.ndarray:
        """Judged probabilities of `pairs` (query_id, listing_id) from the teacher's `probs`;
        evidence is computed over `listings`, the catalogue the pairs come from."""
        if self.head is not None:
            probs = self.head.apply(probs, self._evidence_over(listings).frame(pairs, query_text))
        return self.biases.apply(probs)

    def _evidence_over(self, listings: pd.DataFrame) -> PairEvidence:
        """One evidence index per catalogue: a label store scores many batches over the same
        listings, and BM25 or MiniLM over a catalogue is built once."""
        if self._evidence is None or self._evidence.listings is not listings:
            self._evidence = PairEvidence(listings, self.head.features)
        return self._evidence

    def save(self, teacher_dir: Path) -> None:
        write_json(self.biases.to_dict(), teacher_dir / DECISION_FILE)
        if self.head is not None:
            write_json(self.head.to_dict(), teacher_dir / COMBINED_HEAD_FILE)

    @classmethod
    def load(cls, teacher_dir: Path, labels: list[str], features: list[str] | None) -> Self:
        """What stage train_teacher saved; `features` is the configured combined head's
        (None: no head). A missing file says which stage writes it."""
        files = [teacher_dir / DECISION_FILE]
        if features is not None:
            files.append(teacher_dir / COMBINED_HEAD_FILE)
        for path in files:
            if not path.exists():
                raise DataError(f"{path}: not found; train the teacher first (stage train_teacher)")
        biases = DecisionBiases.from_dict(json.loads(files[0].read_text()), labels)
        head = None
        if features is not None:
            head = CombinedHead.from_dict(json.loads(files[1].read_text()), labels, features)
        return cls(biases, head)

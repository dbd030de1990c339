"""Few-shot examples: the current guideline version's worked examples (real rationales)
plus human-labelled pairs of the ANNOTATE pool (never golden: the annotator is measured
there), topped up label by label so the shots are balanced across the taxonomy.

Pool pairs have a human label but no written reason, so their rationale is the templated
`prompt.shot_rationale` (the label's definition): honest, if less instructive than a real one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from relevance_kit.config import RelevanceConfig
from relevance_kit.errors import DataError
from relevance_kit.prompts import Shot
from relevance_kit.schemas import PAIR_KEY


def choose_shots(
    cfg: RelevanceConfig,
    pool_pairs: pd.DataFrame,
    judgments: pd.DataFrame,
    golden_query_ids: set[str],
) -> list[Shot]:
    """`prompt.n_shots` examples: guideline examples first, then the pool label with the
    fewest shots so far gets the next one (seeded choice)."""
    n = cfg.prompt.n_shots
    shots = [
        Shot(ex.query, {"title": ex.listing}, ex.labels[cfg.taxonomy.name], ex.rationale)
        for ex in cfg.guidelines.current.examples
        if cfg.taxonomy.name in ex.labels
    ][:n]
    leaked = set(pool_pairs["query_id"]) & golden_query_ids
    if leaked:
        raise DataError(
            f"annotate pool shares {len(leaked)} query(ies) with golden, e.g. {sorted(leaked)[:3]}; re-run `sample`"
        )
    human = judgments[judgments["source"] == "human"].drop_duplicates(PAIR_KEY)
    candidates = pool_pairs.merge(human[[*PAIR_KEY, "label"]], on=PAIR_KEY)
    rng = np.random.default_rng(cfg.seed)
    by_label = {
        label: candidates[candidates["label"] == label]
        .sample(frac=1.0, random_state=rng)
        .to_dict("records")
        for label in cfg.taxonomy.ids
    }
    counts = {label: sum(s.label == label for s in shots) for label in cfg.taxonomy.ids}
    labels = cfg.taxonomy.labels
    while len(shots) < n and any(by_label.values()):
        label = min((lab for lab in labels if by_label[lab.id]), key=lambda lab: counts[lab.id])
        row = by_label[label.id].pop()
        rationale = cfg.prompt.shot_rationale.format(
            label_display=label.display, definition=label.definition.strip()
        )
        shots.append(
            Shot(
                row["query"],
                {k: v for k, v in row.items() if k not in (*PAIR_KEY, "query", "label")},
                label.id,
                rationale,
            )
        )
        counts[label.id] += 1
    return shots

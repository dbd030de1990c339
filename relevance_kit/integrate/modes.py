"""The four ways predicted relevance changes search. Each mode is a Hydra `_target_` with
its parameters (conf/integration/*.yaml `modes:`), applied to a search state in config order:

- Filter: hide candidates whose predicted P(label) exceeds a threshold (before ranking).
- Feature: rank with the learned ranker, predicted relevance among its features.
- LossWeight: rank with the learned ranker trained on examples weighted by predicted relevance.
- Boost: rules promote listings with high predicted relevance within the final top-k.

A ranker mode re-scores every candidate with the ranker as configured so far (a Feature then
a LossWeight trains one ranker with both), so it overrides a Boost placed before it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from relevance_kit.errors import ConfigError
from relevance_kit.integrate.ranker import RankerSpec
from relevance_kit.schemas import prob_column


@dataclass(frozen=True)
class SearchState:
    """Candidates of every query (features, p_<label>, pred_gain, `score`, `shown`) and the
    ranker spec so far; `rank_with(spec, candidates)` scores candidates with a trained ranker."""

    candidates: pd.DataFrame
    labels: Sequence[str]
    k: int
    rank_with: Callable[[RankerSpec, pd.DataFrame], np.ndarray]
    spec: RankerSpec = field(default_factory=RankerSpec)


class Mode(ABC):
    name: ClassVar[str]
    trains_ranker: ClassVar[bool] = False

    @abstractmethod
    def apply(self, state: SearchState) -> SearchState:
        """The state after this mode (never mutates the input)."""


class Filter(Mode):
    """Hide a candidate when its predicted P(`label`) exceeds `threshold` (label: the
    taxonomy's worst label by default)."""

    name = "filter"

    def __init__(self, threshold: float, label: str | None = None) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"filter.threshold = {threshold}: must be in [0, 1]")
        self.threshold = threshold
        self.label = label

    def apply(self, state: SearchState) -> SearchState:
        label = self.label or state.labels[-1]
        if label not in state.labels:
            raise ConfigError(
                f"filter.label = {label!r}: not a taxonomy label {list(state.labels)}"
            )
        cands = state.candidates.copy()
        cands["shown"] &= ~(cands[prob_column(label)] > self.threshold)
        return replace(state, candidates=cands)


class Feature(Mode):
    """Predicted relevance (expected gain, P(worst)) as features of the learned ranker."""

    name = "feature"
    trains_ranker = True

    def apply(self, state: SearchState) -> SearchState:
        return _rerank(state, replace(state.spec, relevance_feature=True))


class LossWeight(Mode):
    """Weight each ranker training example by floor + (1 - floor) * predicted expected gain,
    so the ranker learns most from what the scorer believes relevant."""

    name = "loss_weight"
    trains_ranker = True

    def __init__(self, floor: float = 0.1) -> None:
        if not 0.0 <= floor <= 1.0:
            raise ConfigError(f"loss_weight.floor = {floor}: must be in [0, 1]")
        self.floor = floor

    def apply(self, state: SearchState) -> SearchState:
        return _rerank(state, replace(state.spec, weight_floor=self.floor))


class Boost(Mode):
    """Within each query's top `window` (default: k) shown candidates, move those meeting a
    rule ahead of those meeting none; an earlier rule ranks first; order is kept otherwise.
    A rule is {min_prob: <float>[, label: <taxonomy label>]}: P(label) >= min_prob; the label
    defaults to the taxonomy's best one, so the same rule holds for every taxonomy."""

    name = "boost"

    def __init__(self, rules: Sequence[dict[str, Any]], window: int | None = None) -> None:
        if not rules:
            raise ConfigError("boost.rules: give at least one rule {min_prob[, label]}")
        for i, rule in enumerate(rules):
            if "min_prob" not in rule or not set(rule) <= {"label", "min_prob"}:
                raise ConfigError(
                    f"boost.rules[{i}] = {dict(rule)}: a rule has the keys min_prob and (optional) label"
                )
        self.rules = [dict(rule) for rule in rules]
        self.window = window

    def apply(self, state: SearchState) -> SearchState:
        rules = [{"label": state.labels[0], **rule} for rule in self.rules]
        for i, rule in enumerate(rules):
            if rule["label"] not in state.labels:
                raise ConfigError(
                    f"boost.rules[{i}].label = {rule['label']!r}: not a taxonomy label {list(state.labels)}"
                )
        window = self.window or state.k
        cands = state.candidates.copy()
        tier = np.full(len(cands), len(rules))
        for i, rule in reversed(list(enumerate(rules))):
            tier[cands[prob_column(rule["label"])].to_numpy() >= rule["min_prob"]] = i
        cands["_tier"] = tier
        order = positions(cands)
        cands["_tier"] = np.where(order < window, cands["_tier"], len(self.rules) + 1)
        cands["_pos"] = order
        # new score: by (in window first, tier, old position), as a decreasing number
        new_order = cands.sort_values(["query_id", "_tier", "_pos"]).groupby("query_id").cumcount()
        cands["score"] = -new_order.reindex(cands.index).to_numpy(dtype=np.float64)
        return replace(state, candidates=cands.drop(columns=["_tier", "_pos"]))


def positions(cands: pd.DataFrame) -> np.ndarray:
    """0-based position of each shown candidate in its query's ranking by score (ties by
    listing id, so rankings are deterministic); hidden candidates get a large position."""
    ranked = cands[cands["shown"]].sort_values(
        ["query_id", "score", "listing_id"], ascending=[True, False, True]
    )
    pos = pd.Series(np.iinfo(np.int32).max, index=cands.index, dtype=np.int64)
    pos[ranked.index] = ranked.groupby("query_id").cumcount()
    return pos.to_numpy()


def _rerank(state: SearchState, spec: RankerSpec) -> SearchState:
    cands = state.candidates.copy()
    cands["score"] = state.rank_with(spec, cands)
    return replace(state, candidates=cands, spec=spec)


def instantiate_modes(configs: Sequence[dict[str, Any]]) -> list[Mode]:
    """Build modes from config entries ({_target_: ..., params}) with Hydra; errors name the entry."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    modes: list[Mode] = []
    for i, conf in enumerate(configs):
        try:
            mode = instantiate(dict(conf), _convert_="all")
        except InstantiationException as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else exc
            raise ConfigError(f"integration.modes[{i}] ({conf.get('_target_')}): {cause}") from None
        if not isinstance(mode, Mode):
            raise ConfigError(
                f"integration.modes[{i}]: {conf.get('_target_')} is not an integration Mode"
            )
        modes.append(mode)
    return modes

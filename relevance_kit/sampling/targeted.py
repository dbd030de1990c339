"""Targeted sampling of hard cases by declarative rules.

Random samples are dominated by easy pairs; rules such as "high lexical overlap but
irrelevant" pull in the cases where lexical matching and relevance disagree, which is
where the annotator and the models need the most examples. A rule comes from YAML:

    name: overlap_but_irrelevant
    where:
      lexical_overlap: {min_quantile: 0.75, min: null, max: null, max_quantile: null, in: null}
      label: {in: [irrelevant], min: null, max: null, min_quantile: null, max_quantile: null}
    max_pairs: 100
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from relevance_kit.errors import ConfigError, DataError
from relevance_kit.sampling._validate import require_unique
from relevance_kit.sampling.stratified import REASON
from relevance_kit.schemas import PAIR_KEY

Scalar = str | int | float | bool


class Condition(BaseModel):
    """Bounds on one column; every bound given (not None) must hold, and each is written
    (None: not bounded). Quantiles are computed over the whole pool the rule runs on, so
    "top quarter by overlap" adapts to each pool."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    min: float | None
    max: float | None
    min_quantile: float | None = Field(ge=0.0, le=1.0)
    max_quantile: float | None = Field(ge=0.0, le=1.0)
    in_: list[Scalar] | None = Field(alias="in", min_length=1)

    @model_validator(mode="after")
    def _has_a_bound(self) -> Condition:
        if all(getattr(self, field) is None for field in type(self).model_fields):
            raise ValueError("a condition needs one of: min, max, min_quantile, max_quantile, in")
        return self

    @property
    def numeric(self) -> bool:
        """Whether any bound needs an ordered, numeric column."""
        bounds = (self.min, self.max, self.min_quantile, self.max_quantile)
        return any(bound is not None for bound in bounds)

    def mask(self, values: pd.Series) -> pd.Series:
        """True where the value meets every bound; missing values never match."""
        keep = values.notna()
        if self.min is not None:
            keep &= values >= self.min
        if self.max is not None:
            keep &= values <= self.max
        if self.min_quantile is not None:
            keep &= values >= values.quantile(self.min_quantile)
        if self.max_quantile is not None:
            keep &= values <= values.quantile(self.max_quantile)
        if self.in_ is not None:
            keep &= values.isin(self.in_)
        return keep


class TargetRule(BaseModel):
    """A named hard-case rule: pairs meeting every condition in `where`, at most `max_pairs`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # no '=' or '|': never mistaken for a stratum
    where: dict[str, Condition] = Field(min_length=1)
    max_pairs: int = Field(ge=0)

    def matches(self, pool: pd.DataFrame) -> pd.Series:
        """True for the pool's pairs meeting every condition; a column the pool lacks (e.g.
        label in an unlabeled pool) is an error, not an empty match."""
        keep = pd.Series(True, index=pool.index)
        for column, condition in self.where.items():
            if column not in pool.columns:
                raise DataError(
                    f"targeted rule {self.name!r}: column {column!r} is not in the pool "
                    f"(columns: {list(pool.columns)})"
                )
            if condition.numeric and not pd.api.types.is_numeric_dtype(pool[column]):
                raise DataError(
                    f"targeted rule {self.name!r}: column {column!r} is {pool[column].dtype}, "
                    "but min/max/quantile bounds need a numeric column"
                )
            keep &= condition.mask(pool[column])
        return keep


def targeted_sample(pairs: pd.DataFrame, rules: Sequence[TargetRule], seed: int) -> pd.DataFrame:
    """Up to `max_pairs` random pairs per rule, REASON set to the rule's name. Rules run in
    order and each picks among pairs no earlier rule took, so no pair appears twice and every
    rule's budget goes to new pairs. Rows keep the pool's order."""
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"targeted rules: names must be unique, got {names}")
    require_unique(pairs, PAIR_KEY, "targeted_sample pool")
    rng = np.random.default_rng(seed)
    reason = np.full(len(pairs), None, dtype=object)
    for rule in rules:
        candidates = np.flatnonzero(rule.matches(pairs).to_numpy() & pd.isna(reason))
        chosen = rng.choice(candidates, size=min(rule.max_pairs, len(candidates)), replace=False)
        reason[chosen] = rule.name
    picked = ~pd.isna(reason)
    return pairs[picked].assign(**{REASON: reason[picked]}).reset_index(drop=True)


def combine_samples(targeted: pd.DataFrame, stratified: pd.DataFrame) -> pd.DataFrame:
    """One row per pair from both samples; a pair in both keeps its rule name as REASON,
    because the rule says more about why it is worth labelling than its stratum does."""
    both = pd.concat([targeted, stratified], ignore_index=True)
    return both.drop_duplicates(PAIR_KEY, keep="first").reset_index(drop=True)

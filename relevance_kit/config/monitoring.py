"""The `monitoring` group (conf/monitoring/): the daily relevance series, its detector, and
the simulated request and impression logs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator

from relevance_kit.config.base import Probability, RelevanceMetric, Strict, _check_scorer


class Cusum(Strict):
    slack: Annotated[float, Field(ge=0.0)]  # in standard deviations of the trailing window
    limit: Annotated[float, Field(gt=0.0)]  # alert when the cumulative sum exceeds it


class RequestLogSimulation(Strict):
    """The simulated request log: live-like traffic with a regression injected from a day on."""

    start_date: date
    days: Annotated[int, Field(gt=0)]
    requests_per_day: Annotated[int, Field(gt=0)]
    regression_day: Annotated[int, Field(ge=0)] | None  # first broken day (0-based); null: none
    regression_share: Probability  # share of shown slots replaced by random catalogue listings


class AbSimulation(Strict):
    """The simulated impression log of an A/B test: each request served by a random variant
    that replaces its share of shown slots by random catalogue listings (the known effect)."""

    start_date: date  # first day of the test; the pre-period is the days before it
    days: Annotated[int, Field(gt=0)]
    pre_days: Annotated[int, Field(ge=0)]  # control-only days before the test (CUPED); 0: none
    requests_per_day: Annotated[int, Field(gt=0)]
    variants: dict[str, Probability]  # variant -> share of slots it replaces


class AbLogConfig(Strict):
    """A/B relevance from an impression log, labelled by the monitoring scorer."""

    control: str
    requests_per_variant: Annotated[int, Field(gt=1)]  # sampled and labelled per variant
    pre_requests: Annotated[int, Field(ge=0)]  # sampled from the pre-period log for CUPED
    bootstrap_resamples: Annotated[int, Field(ge=100)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)]
    power: Annotated[float, Field(gt=0.5, lt=1.0)]
    detect: dict[RelevanceMetric, Annotated[float, Field(gt=0.0)]]  # differences to size for
    simulation: AbSimulation

    @model_validator(mode="after")
    def _control_is_a_variant(self) -> AbLogConfig:
        if self.control not in self.simulation.variants:
            raise ValueError(
                f"control = {self.control!r} is not one of simulation.variants {sorted(self.simulation.variants)}"
            )
        return self


class MonitoringConfig(Strict):
    name: str
    scorer: str  # the tier that labels sampled requests: student | predictions parquet
    k: Annotated[int, Field(gt=0)]
    requests_per_day: Annotated[int, Field(gt=0)]  # sampled and labelled per day
    metric: RelevanceMetric
    detector: Literal["threshold", "cusum"]
    drop_threshold: Annotated[float, Field(gt=0.0)]  # threshold detector: absolute drop
    window_days: Annotated[int, Field(gt=0)]
    min_history: Annotated[int, Field(gt=0)]  # days of series before the detector speaks
    cusum: Cusum
    webhook_url: str | None
    simulation: RequestLogSimulation
    abtest: AbLogConfig

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringConfig:
        _check_scorer(self.scorer)
        sim = self.simulation
        if sim.requests_per_day < self.requests_per_day:
            raise ValueError(
                f"simulation.requests_per_day = {sim.requests_per_day} is below requests_per_day = "
                f"{self.requests_per_day} (the daily sample)"
            )
        if sim.regression_day is not None and sim.regression_day >= sim.days:
            raise ValueError(
                f"simulation.regression_day = {sim.regression_day} must be below simulation.days = {sim.days}"
            )
        return self

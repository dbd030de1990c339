"""A/B relevance from an impression log (the contract of `log_format`, with a `variant`
column): sample requests per variant, label their shown top-k through the monitoring scorer
(the teacher, through the label store), and compare each variant with the control.

The unit is the request, randomised to a variant, so the arms are independent samples:
per variant the mean of % fully relevant@k, % irrelevant@k and nDCG@k with bootstrap
intervals; per treatment the difference with a bootstrap interval and Welch's p-value; with
a pre-period log, CUPED on the request's query mean in the pre-period (how hard its query
is, known before the test), which removes the between-query variance from the comparison;
and the requests per variant needed for the configured effect (statsmodels power).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from relevance_kit.config import AbLogConfig, RelevanceConfig
from relevance_kit.errors import DataError
from relevance_kit.integrate.abtest import (
    cuped,
    mean_interval,
    requests_per_variant,
    two_sample_test,
)
from relevance_kit.integrate.scorers import PairScorer
from relevance_kit.monitor.run import monitor_scorer
from relevance_kit.monitor.series import day_sample, request_level
from relevance_kit.schemas import METRICS


def variant_metrics(
    requests: pd.DataFrame,
    scorer: PairScorer,
    gains: Mapping[str, float],
    k: int,
    per_variant: int,
    seed: int,
) -> pd.DataFrame:
    """Per-request metrics of up to `per_variant` sampled requests of each variant."""
    if "variant" not in requests.columns:
        raise DataError(
            "impression log: an A/B analysis needs the `variant` column (see relevance_kit/monitor/log_format.py)"
        )
    sampled = pd.concat(
        [
            day_sample(group, per_variant, f"variant:{name}", seed)
            for name, group in requests.groupby("variant", sort=True)
        ]
    )
    return request_level(sampled, scorer, gains, k)


def query_covariate(per_request: pd.DataFrame, pre: pd.DataFrame, metric: str) -> np.ndarray:
    """Each request's CUPED covariate: its query's mean of `metric` in the pre-period, the
    pre-period's overall mean for queries it never saw."""
    by_query = pre.groupby("query_id")[metric].mean()
    return (
        per_request["query_id"].map(by_query).fillna(pre[metric].mean()).to_numpy(dtype=np.float64)
    )


def analyse_impressions(
    per_request: pd.DataFrame,
    pre: pd.DataFrame | None,
    ab: AbLogConfig,
    *,
    k: int,
    label_source: str,
    seed: int,
) -> dict:
    """The A/B report of labelled requests (`arm` = variant); `pre`: labelled pre-period requests."""
    arms = sorted(per_request["arm"].unique())
    if ab.control not in arms:
        raise DataError(
            f"impression log: control variant {ab.control!r} not found; the log has {arms}"
        )
    treatments = [a for a in arms if a != ab.control]
    if not treatments:
        raise DataError(
            f"impression log: only the control variant {ab.control!r}; nothing to compare"
        )
    boot = {"n_resamples": ab.bootstrap_resamples, "confidence": ab.confidence, "seed": seed}
    variants = {
        arm: {"n_requests": int((per_request["arm"] == arm).sum()),
              **{m: mean_interval(per_request.loc[per_request["arm"] == arm, m].dropna(), **boot) for m in METRICS}}
        for arm in arms
    }  # fmt: skip
    vs_control = {
        arm: {m: _compare(per_request, pre, ab, arm, m, boot) for m in METRICS}
        for arm in treatments
    }
    return {
        "label_source": label_source, "k": k, "control": ab.control, "confidence": ab.confidence,
        "alpha": ab.alpha, "power": ab.power, "cuped": pre is not None,
        "n_pre_requests": 0 if pre is None else len(pre), "variants": variants, "vs_control": vs_control,
    }  # fmt: skip


def _compare(
    per_request: pd.DataFrame,
    pre: pd.DataFrame | None,
    ab: AbLogConfig,
    arm: str,
    metric: str,
    boot: dict,
) -> dict:
    both = (
        per_request[per_request["arm"].isin([ab.control, arm])]
        .dropna(subset=[metric])
        .reset_index(drop=True)
    )
    is_treated = (both["arm"] == arm).to_numpy()
    y = both[metric].to_numpy(dtype=np.float64)
    row = two_sample_test(
        y[~is_treated], y[is_treated], boot["n_resamples"], boot["confidence"], boot["seed"]
    )
    row["significant"] = bool(row["p_value"] < ab.alpha)
    effect = ab.detect.get(metric)
    if effect is not None and row["sd"] > 0:
        row["detect"] = effect
        row["requests_per_variant_needed"] = requests_per_variant(
            effect, row["sd"], ab.alpha, ab.power
        )
    if pre is not None:
        adjusted, theta = cuped(y, query_covariate(both, pre, metric))
        test = two_sample_test(
            adjusted[~is_treated],
            adjusted[is_treated],
            boot["n_resamples"],
            boot["confidence"],
            boot["seed"],
        )
        reduction = (
            1.0 - float(np.var(adjusted, ddof=1) / np.var(y, ddof=1)) if np.var(y) > 0 else 0.0
        )
        row["cuped"] = {
            **test,
            "theta": theta,
            "variance_reduction": reduction,
            "significant": bool(test["p_value"] < ab.alpha),
        }
        if effect is not None and test["sd"] > 0:
            row["cuped"]["requests_per_variant_needed"] = requests_per_variant(
                effect, test["sd"], ab.alpha, ab.power
            )
    return row


def abtest_report(
    cfg: RelevanceConfig,
    requests: pd.DataFrame,
    pre: pd.DataFrame | None,
    listings: pd.DataFrame | None = None,
) -> dict:
    """The whole analysis of validated request logs (`log_format.read_request_log`): label each
    variant's sampled requests (and the pre-period's, for CUPED) with monitoring.scorer."""
    mc, ab = cfg.monitoring, cfg.monitoring.abtest
    pre = None if pre is None or not ab.pre_requests else pre.assign(variant="pre")
    both = requests if pre is None else pd.concat([requests, pre], ignore_index=True)
    scorer = monitor_scorer(cfg, mc.scorer, both, "abtest", listings)
    per_request = variant_metrics(
        requests, scorer, cfg.taxonomy.gains, mc.k, ab.requests_per_variant, cfg.seed
    )
    labelled_pre = (
        None
        if pre is None
        else variant_metrics(pre, scorer, cfg.taxonomy.gains, mc.k, ab.pre_requests, cfg.seed)
    )
    return analyse_impressions(
        per_request, labelled_pre, ab, k=mc.k, label_source=scorer.tier, seed=cfg.seed
    )

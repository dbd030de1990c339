"""A/B analysis of relevance: control vs treatment on labelled result logs.

Requests are paired by query (the same query under both arms: exact in the simulation,
and in a live test once each arm's requests are averaged per query), so the analysis is a
paired one: per-query differences, a bootstrap interval of their mean (scipy.stats.bootstrap),
the paired t-test and the Wilcoxon signed-rank test, and a power / sample-size calculator
for a paired difference (non-central t, as G*Power's "matched pairs" test).

A live test randomised by request (`relevance_kit.monitor.ablog`) compares independent
samples instead: bootstrap intervals per arm and of the difference, Welch's t-test, CUPED
on a pre-period covariate, and statsmodels' two-sample power for the requests it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from relevance_kit.errors import DataError
from relevance_kit.integrate.results import Unjudged, request_metrics
from relevance_kit.schemas import METRICS


def paired_differences(
    per_request: pd.DataFrame, metric: str, control: str, treatment: str
) -> pd.DataFrame:
    """Per-query means of `metric` under both arms (queries missing from an arm, or with no
    value there, are dropped), with diff = treatment - control."""
    arms = set(per_request["arm"])
    missing = [a for a in (control, treatment) if a not in arms]
    if missing:
        raise DataError(f"arm(s) {missing} not in the result log; it has {sorted(arms)}")
    chosen = per_request[per_request["arm"].isin([control, treatment])]
    means = chosen.groupby(["query_id", "arm"])[metric].mean().unstack("arm")
    paired = (
        means[[control, treatment]]
        .dropna()
        .rename(columns={control: "control", treatment: "treatment"})
    )
    paired["diff"] = paired["treatment"] - paired["control"]
    return paired


def paired_test(
    diffs: Sequence[float], n_resamples: int, confidence: float, seed: int
) -> dict[str, float]:
    """Mean difference with a percentile bootstrap interval, the paired t-test and Wilcoxon
    p-values, and the standard deviation of the differences (for the power calculator)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    out = {
        "n": n,
        "diff": float(d.mean()) if n else np.nan,
        "sd_diff": float(d.std(ddof=1)) if n > 1 else np.nan,
    }
    if n < 2 or np.allclose(d, d[0]):
        # no spread: nothing to resample or test (identical arms give diff 0, p 1)
        p = 1.0 if n >= 2 and d[0] == 0 else np.nan
        return {**out, "low": out["diff"], "high": out["diff"], "p_ttest": p, "p_wilcoxon": p}
    boot = stats.bootstrap(
        (d,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
        method="percentile", rng=np.random.default_rng(seed),
    )  # fmt: skip
    nonzero = d[d != 0]
    return {
        **out,
        "low": float(boot.confidence_interval.low),
        "high": float(boot.confidence_interval.high),
        "p_ttest": float(stats.ttest_1samp(d, 0.0).pvalue),  # = ttest_rel on the two arms
        "p_wilcoxon": float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0,
    }


def compare_arms(
    per_request: pd.DataFrame,
    control: str,
    treatment: str,
    metrics: Sequence[str] = METRICS,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    alpha: float = 0.05,
    power: float = 0.8,
    detect: Mapping[str, float] | None = None,
) -> dict[str, dict]:
    """Control vs treatment for each metric: both arms' means, the paired test and, when
    `detect` gives a difference to detect for the metric, the queries needed to detect it
    with the observed spread of differences."""
    out: dict[str, dict] = {}
    for metric in metrics:
        paired = paired_differences(per_request, metric, control, treatment)
        row = {
            "control": float(paired["control"].mean()) if len(paired) else np.nan,
            "treatment": float(paired["treatment"].mean()) if len(paired) else np.nan,
            **paired_test(paired["diff"], n_resamples, confidence, seed),
        }
        effect = (detect or {}).get(metric)
        if effect is not None and np.isfinite(row["sd_diff"]) and row["sd_diff"] > 0:
            row["detect"] = effect
            row["n_to_detect"] = paired_sample_size(effect, row["sd_diff"], alpha, power)
        out[metric] = row
    return out


def analyse_log(
    log: pd.DataFrame,
    gains: Mapping[str, float],
    k: int,
    control: str,
    treatments: Sequence[str],
    *,
    label_source: str,
    unjudged: Unjudged = "exclude",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    detect: Mapping[str, float] | None = None,
) -> dict:
    """The whole A/B report of a result log: each treatment arm against the control."""
    per_request = request_metrics(log, gains, k, unjudged)
    return {
        "label_source": label_source,
        "k": k,
        "unjudged": unjudged,
        "confidence": confidence,
        "control": control,
        "n_queries": int(per_request["query_id"].nunique()),
        "arms": {
            arm: per_request.loc[per_request["arm"] == arm, [*METRICS, "unjudged_at_k"]]
            .mean()
            .to_dict()
            for arm in [control, *treatments]
        },
        "vs_control": {
            arm: compare_arms(
                per_request,
                control,
                arm,
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
                detect=detect,
            )
            for arm in treatments
        },
    }


# --- power and sample size for a paired difference -------------------------------------------


def paired_power(n: int, effect: float, sd_diff: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with n pairs to detect a mean difference `effect`
    when the differences have standard deviation `sd_diff` (non-central t)."""
    if n < 2:
        return 0.0
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) / sd_diff * np.sqrt(n)
    return float(stats.nct.sf(t_crit, df, nc) + stats.nct.cdf(-t_crit, df, nc))


def paired_sample_size(
    effect: float, sd_diff: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Smallest number of pairs (queries, or sampled requests) whose paired t-test reaches
    `power`: starts from the normal approximation and steps to the exact t answer."""
    if effect == 0 or sd_diff <= 0:
        raise DataError(
            f"sample size needs a non-zero effect and sd_diff > 0 (got {effect}, {sd_diff})"
        )
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, int(np.ceil((z * sd_diff / abs(effect)) ** 2)))
    while paired_power(n, effect, sd_diff, alpha) < power:
        n += 1
    while n > 2 and paired_power(n - 1, effect, sd_diff, alpha) >= power:
        n -= 1
    return n


# --- two independent samples: a live A/B test randomised by request ---------------------------


def mean_interval(
    values: Sequence[float], n_resamples: int, confidence: float, seed: int
) -> dict[str, float]:
    """Mean with its percentile bootstrap interval (scipy.stats.bootstrap)."""
    x = np.asarray(values, dtype=np.float64)
    out = {"n": len(x), "mean": float(x.mean()) if len(x) else np.nan}
    if len(x) < 2 or np.allclose(x, x[0]):
        return {**out, "low": out["mean"], "high": out["mean"]}
    boot = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return {
        **out,
        "low": float(boot.confidence_interval.low),
        "high": float(boot.confidence_interval.high),
    }


def two_sample_test(
    control: Sequence[float],
    treatment: Sequence[float],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, float]:
    """treatment - control: difference of means with a percentile bootstrap interval that
    resamples each arm on its own, Welch's t-test p-value, and the pooled sd (for sizing)."""
    a, b = np.asarray(control, dtype=np.float64), np.asarray(treatment, dtype=np.float64)
    sd = float(
        np.sqrt(
            (a.var(ddof=1) * (len(a) - 1) + b.var(ddof=1) * (len(b) - 1)) / (len(a) + len(b) - 2)
        )
    )
    diff = float(b.mean() - a.mean())
    if sd == 0:
        return {
            "diff": diff,
            "low": diff,
            "high": diff,
            "p_value": 1.0 if diff == 0 else 0.0,
            "sd": sd,
        }
    boot = stats.bootstrap(
        (a, b), lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis), n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", vectorized=True, rng=np.random.default_rng(seed),
    )  # fmt: skip
    p_value = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    return {
        "diff": diff,
        "low": float(boot.confidence_interval.low),
        "high": float(boot.confidence_interval.high),
        "p_value": p_value,
        "sd": sd,
    }


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """CUPED (Deng et al. 2013): y - theta (x - mean x) with theta = cov(x, y) / var(x),
    pooled over both arms so the adjustment cannot bias the difference; returns the adjusted
    values and theta. x is a pre-period covariate of each unit (here: its query's mean)."""
    var = float(np.var(x, ddof=1))
    theta = float(np.cov(x, y, ddof=1)[0, 1] / var) if var > 0 else 0.0
    return y - theta * (x - x.mean()), theta


def requests_per_variant(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Requests per variant for a two-sided two-sample t-test to detect an absolute
    difference `effect` when the per-request sd is `sd` (statsmodels' TTestIndPower)."""
    from statsmodels.stats.power import TTestIndPower

    if effect == 0 or sd <= 0:
        raise DataError(f"sample size needs a non-zero effect and sd > 0 (got {effect}, {sd})")
    analysis, d = TTestIndPower(), abs(effect) / sd
    n = analysis.solve_power(
        effect_size=d, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    if not np.isfinite(n):  # its root finder gives up where the answer is a handful of requests
        n = next(
            k
            for k in range(2, 1_000_000)
            if analysis.power(d, nobs1=k, alpha=alpha, ratio=1.0) >= power
        )
    return int(np.ceil(n))

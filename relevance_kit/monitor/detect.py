"""Change detectors for the daily series: a fall of the watched metric (a rise, for
pct_irrelevant) against the trailing window of earlier days.

- threshold: alert when the day is more than `drop_threshold` worse than the trailing mean.
- cusum: lower one-sided CUSUM of the day's deviation from the trailing mean in units of
  the day-to-day noise, S = max(0, S + z - slack); alert while S exceeds `limit` (S falls
  back once the metric recovers). The noise is the trailing standard deviation, floored by
  the days' own sampling standard errors (`<metric>_se` in the series), since a few days
  estimate a spread poorly.

Days already alerted are left out of later trailing windows, so a lasting regression keeps
alerting instead of becoming the new normal.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

WORSE_WHEN_HIGHER = {"pct_irrelevant"}


def detect(
    series: pd.DataFrame,
    metric: str,
    method: Literal["threshold", "cusum"],
    *,
    window_days: int,
    min_history: int,
    drop_threshold: float,
    cusum_slack: float,
    cusum_limit: float,
) -> pd.DataFrame:
    """Per day: the trailing mean (`baseline`), the detector's `statistic` and `alert`."""
    sign = -1.0 if metric in WORSE_WHEN_HIGHER else 1.0
    values = sign * series[metric].to_numpy(dtype=np.float64)
    se_column = f"{metric}_se"
    se = (
        series[se_column].to_numpy(dtype=np.float64)
        if se_column in series
        else np.zeros(len(values))
    )
    baseline = np.full(len(values), np.nan)
    statistic = np.zeros(len(values))
    alert = np.zeros(len(values), dtype=bool)
    cusum = 0.0
    for t, value in enumerate(values):
        kept = [i for i in range(t) if not alert[i]][-window_days:]
        history = values[kept]
        if len(history) < min_history or np.isnan(value):
            continue
        mean = float(np.mean(history))
        baseline[t] = sign * mean
        if method == "threshold":
            statistic[t] = mean - value
            alert[t] = statistic[t] > drop_threshold
        else:
            sd = max(float(np.std(history, ddof=1)), float(np.nanmean(se[kept])), 1e-9)
            cusum = max(0.0, cusum + (mean - value) / sd - cusum_slack)
            statistic[t] = cusum
            alert[t] = cusum > cusum_limit
    return pd.DataFrame(
        {
            "day": series["day"].to_numpy(),
            "value": sign * values,
            "baseline": baseline,
            "statistic": statistic,
            "alert": alert,
        }
    )

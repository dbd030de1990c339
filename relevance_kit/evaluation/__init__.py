"""Evaluation of the tiers on the golden set: classification metrics with query-level
bootstrap intervals (`metrics`), threshold-free AUC and nDCG (`ranking_metrics`), the
baselines (`baselines`) with their ordinal cut points (`thresholds`), per-class decision
biases (`decision`), the tier table (`tier_table`) and its plots (`plots`)."""

"""Daily relevance monitoring: request logs, the daily series, change detectors, alerts."""

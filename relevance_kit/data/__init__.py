"""Raw data in, validated parquet out: locating and verifying source files, dataset
loaders, and bad-row handling (error or quarantine)."""

"""On-demand benchmarks (`python -m relevance_kit.bench.<annotator|teacher|student>`), each
writing metrics/bench_*.json. Kept out of the stage packages so that editing a benchmark does
not invalidate the DVC stages that depend on those packages."""

"""On-demand benchmarks (`python -m bench.<annotator|teacher|student>`, run from the
repository root), each writing metrics/bench_*.json. Kept outside the installed package and
out of every stage's imports, so that editing a benchmark invalidates no DVC stage."""

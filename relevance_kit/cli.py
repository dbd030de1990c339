"""`relevance-kit` command line: compose params.yaml, validate it, run a sweep."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from relevance_kit.api_keys import check_api_keys
from relevance_kit.config import CONF_DIR, PARAMS_FILE, compose, load_config, validate_text
from relevance_kit.errors import RelevanceKitError
from relevance_kit.io import write_text
from relevance_kit.sampling.splits import check_split_sizes
from relevance_kit.sweep import run_sweep


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="relevance-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compose", help="compose conf/ into params.yaml, as `dvc exp run -S` does")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=ci_tiny")
    p.add_argument("--output", default=str(PARAMS_FILE))
    sub.add_parser("validate", help="validate params.yaml against the config models")
    p = sub.add_parser("sweep", help="queue a conf/sweep/*.yaml grid as DVC experiments and run it")
    p.add_argument("file")
    p.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.command == "compose":
            text = compose(args.overrides, CONF_DIR)
            validate_text(text, f"{args.output} (composed with overrides {args.overrides})")
            write_text(text, args.output)  # only a valid config is written, atomically
            print(f"wrote {args.output}")
        elif args.command == "validate":
            cfg = load_config()
            check_api_keys(cfg)
            check_split_sizes(cfg.sampling.splits, cfg.sampling.max_queries, Path(cfg.paths.prepared) / "queries.parquet")
            print(f"params.yaml is valid (experiment {cfg.experiment})")
        elif args.command == "sweep":
            run_sweep(args.file, jobs=args.jobs)
    except RelevanceKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        sys.exit(exc.returncode or 1)


if __name__ == "__main__":
    main()

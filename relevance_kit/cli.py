"""`relevance-kit` command line: compose params.yaml, validate it, run a sweep, refresh the
student's listing index."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from relevance_kit.api_keys import check_api_keys
from relevance_kit.config import CONF_DIR, PARAMS_FILE, compose, load_config
from relevance_kit.errors import DataError, RelevanceKitError
from relevance_kit.io import read_parquet, write_text
from relevance_kit.sampling.splits import check_split_sizes
from relevance_kit.sweep import run_sweep


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="relevance-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "compose", help="compose conf/ into params.yaml as `dvc exp run` does, and validate it"
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=ci_tiny")
    p.add_argument("--output", default=str(PARAMS_FILE))
    sub.add_parser("validate", help="validate params.yaml against the config models")
    p = sub.add_parser("sweep", help="queue a conf/sweep/*.yaml grid as DVC experiments and run it")
    p.add_argument("file")
    p.add_argument("--jobs", type=int, default=1)
    p = sub.add_parser(
        "index",
        help="embed new or changed listings into the student's index (incremental)",
        description="Defaults come from params.yaml: the student's export folder and "
        "the prepared listings. A running service picks the new index up on POST /index/reload.",
    )
    p.add_argument("--export-dir", help="default: <paths.models>/student/<student.name>/export")
    p.add_argument(
        "--listings", help="listings parquet; default: <paths.prepared>/listings.parquet"
    )
    p.add_argument("--output", help="index file to write; default: the export's index.npz")
    args = parser.parse_args(argv)
    try:
        if args.command == "compose":
            write_text(
                compose(args.overrides, CONF_DIR), args.output
            )  # validated first, written atomically
            print(f"wrote {args.output}")
        elif args.command == "validate":
            cfg = load_config()
            check_api_keys(cfg)
            check_split_sizes(
                cfg.sampling.splits,
                cfg.sampling.max_queries,
                Path(cfg.paths.prepared) / "queries.parquet",
            )
            print(f"params.yaml is valid (experiment {cfg.experiment})")
        elif args.command == "sweep":
            run_sweep(args.file, jobs=args.jobs)
        elif args.command == "index":
            index_listings(args.export_dir, args.listings, args.output)
    except RelevanceKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        sys.exit(exc.returncode or 1)


def index_listings(export_dir: str | None, listings: str | None, output: str | None) -> None:
    from relevance_kit.student.refresh import refresh_index

    if export_dir is None or listings is None:
        cfg = load_config()
        export_dir = export_dir or str(
            Path(cfg.paths.models) / "student" / cfg.student.name / "export"
        )
        listings = listings or str(Path(cfg.paths.prepared) / "listings.parquet")
        batch_size = cfg.student.export.index_batch_size
    else:
        batch_size = 128
    if not Path(listings).exists():
        raise DataError(f"{listings}: no listings file")
    summary = refresh_index(export_dir, read_parquet(listings), output, batch_size)
    print(
        f"{summary['index']}: {summary['listings']} listings (model {summary['version']}): "
        f"{summary['new']} new, {summary['changed']} changed, {summary['removed']} removed, "
        f"{summary['unchanged']} unchanged"
    )


if __name__ == "__main__":
    main()

"""What every stage script shares: validated config first, clear errors, non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from relevance_kit.api_keys import check_api_keys
from relevance_kit.config import RelevanceConfig, load_config
from relevance_kit.errors import RelevanceKitError


def run_stage(main: Callable[[RelevanceConfig], None], params: str | Path = "params.yaml") -> None:
    """Validate params.yaml, then run `main(cfg)`. A user error prints one clear message and
    exits with status 2; outputs are written atomically, so nothing half-written remains."""
    try:
        cfg = load_config(params)
        check_api_keys(cfg)  # before any work: a missing key would only show stages later
        main(cfg)
    except RelevanceKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

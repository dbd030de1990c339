"""API keys come from the environment only (never params.yaml, logs or outputs). One check,
used where a key is needed and at every stage's start, so a missing key stops a run before
any work instead of after the stages that did not need it."""

from __future__ import annotations

import os

from relevance_kit.config import AnnotatorConfig, RelevanceConfig
from relevance_kit.errors import ConfigError


def api_key(cfg: AnnotatorConfig) -> str:
    """The key from the environment variable the config names; a local server needs none.
    The key itself is never logged, cached or written anywhere."""
    if cfg.api_key_env is None:
        return "not-needed"
    key = os.environ.get(cfg.api_key_env, "")
    if not key:
        raise ConfigError(
            f"annotator {cfg.name!r}: environment variable {cfg.api_key_env} (annotator.api_key_env) "
            "is not set; export your API key there, or run `dvc exp run -S experiment=local_llm` "
            "to use the local model"
        )
    return key


def check_api_keys(cfg: RelevanceConfig) -> None:
    """Fail now, naming the variable, when the configured annotator needs a key that is unset."""
    if cfg.annotator.backend == "openai":
        api_key(cfg.annotator)

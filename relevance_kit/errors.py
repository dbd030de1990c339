"""Errors a user can act on. Stages print them and exit non-zero (see `stages/_run.py`)."""


class RelevanceKitError(Exception):
    """Base class: the message names what was wrong and where (key path, file, row)."""


class ConfigError(RelevanceKitError):
    """The composed config is invalid: wrong key, wrong type or unknown group option."""


class DataError(RelevanceKitError):
    """An input file or row is invalid: checksum, missing column, unknown label, duplicate pair."""

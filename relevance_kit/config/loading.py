"""Loading, composing and error messages: params.yaml read and validated, conf/ composed with
Hydra, and validation errors as one line per bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from relevance_kit.config.root import GROUPS, RelevanceConfig
from relevance_kit.errors import ConfigError

CONF_DIR = Path("conf")
PARAMS_FILE = Path("params.yaml")


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The options of a config group: the YAML files of its folder."""
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def validate(
    raw: dict[str, Any], conf_dir: Path = CONF_DIR, where: str = "params.yaml"
) -> RelevanceConfig:
    """Validate a composed config; raise ConfigError naming key path, value and what is allowed."""
    _check_group_choices(raw, conf_dir, where)
    try:
        return RelevanceConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, raw, where)) from None


def _check_group_choices(raw: dict[str, Any], conf_dir: Path, where: str) -> None:
    """Each group's `name` (and `experiment`) must be one of the files of its folder; checked
    first, because a wrong choice explains every error that would follow from it."""
    for group in (*GROUPS, "experiment"):
        node = raw.get(group)
        choice = (
            node if group == "experiment" else node.get("name") if isinstance(node, dict) else None
        )
        options = group_options(group, conf_dir)
        if isinstance(choice, str) and options and choice not in options:
            key = "experiment" if group == "experiment" else f"{group}.name"
            raise ConfigError(
                f"{where}: {key} = {choice!r} is not an option of group '{group}'; "
                f"choose one of: {', '.join(options)} (files in {conf_dir / group})"
            )


def load_config(path: str | Path = PARAMS_FILE, conf_dir: str | Path = CONF_DIR) -> RelevanceConfig:
    """Read and validate params.yaml: the first thing every stage does."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{path}: not found; compose it with `relevance-kit compose` or `dvc exp run`"
        )
    return validate_text(path.read_text(), str(path), conf_dir)


def validate_text(text: str, where: str, conf_dir: str | Path = CONF_DIR) -> RelevanceConfig:
    """Parse and validate config YAML text (params.yaml's, or a composition before it is written)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    return validate(raw, Path(conf_dir), where=where)


def compose_raw(
    overrides: list[str] | None = None, conf_dir: str | Path = CONF_DIR
) -> dict[str, Any]:
    """Compose conf/ with Hydra exactly as DVC does (`dvc exp run -S ...`): the plain
    composition, as DVC writes it to params.yaml, not yet validated."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"composing {conf_dir} with overrides {overrides or []}: {exc}") from None


def compose(overrides: list[str] | None = None, conf_dir: str | Path = CONF_DIR) -> str:
    """The text of params.yaml: conf/ composed with Hydra as DVC does, validated, and dumped
    as composed (keys in conf/'s order). conf/ writes every setting (the config models have
    no defaults), so this is the params.yaml `dvc exp run -S ...` writes too, and every
    setting a stage reads is a DVC param."""
    from omegaconf import OmegaConf

    raw = compose_raw(overrides, conf_dir)
    validate(raw, Path(conf_dir), where=f"conf/ composed with overrides {overrides or []}")
    return OmegaConf.to_yaml(raw)


def _format_errors(exc: ValidationError, raw: dict[str, Any], where: str) -> str:
    """One line per bad key: its path, its value and what is allowed (union alternatives
    joined with 'or')."""
    problems: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [part for part in err["loc"] if not _is_pydantic_branch(part)]
        key = _key_path(loc)
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc[:-1])) or "?"
            line = f"{key}: unknown key; allowed keys here: {allowed}"
        elif err["type"] == "value_error":  # a model-level rule: its message names the keys
            line = f"{key}: {err['msg'].removeprefix('Value error, ')}"
        else:
            value = _lookup(raw, loc)
            line = f"{key} = {'<missing>' if value is _MISSING else repr(value)}: {err['msg']}"
        head, _, msg = line.partition(": ")
        if msg not in problems.setdefault(head, []):
            problems[head].append(msg)
    lines = [f"{where}: invalid config"]
    lines += [f"  {head}: {' or '.join(msgs)}" for head, msgs in problems.items()]
    return "\n".join(lines)


_MISSING = object()


def _is_pydantic_branch(part: Any) -> bool:
    """Union branch markers such as 'int' or 'constrained-float' that pydantic puts in locs."""
    return isinstance(part, str) and (
        part in {"int", "float", "str", "bool", "none"}
        or "[" in part
        or part.startswith(("constrained-", "literal"))
    )


def _key_path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _lookup(raw: Any, loc: list[Any]) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def _allowed_keys(loc: list[Any]) -> list[str]:
    """Field names of the model found at `loc` in RelevanceConfig (list items skipped)."""
    model: Any = RelevanceConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = (
            model.model_fields.get(part)
            if isinstance(model, type) and issubclass(model, BaseModel)
            else None
        )
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation such as `list[Label]` or `LoraConfig | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None

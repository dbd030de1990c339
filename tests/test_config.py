"""Config composition and validation: every option composes and validates; params.yaml is
a fresh compose of conf/; mistakes fail with key path, value and allowed choices."""

from __future__ import annotations

from pathlib import Path
from typing import get_origin

import pytest
import yaml
from pydantic import BaseModel

from relevance_kit.config import (
    GROUPS,
    RelevanceConfig,
    compose,
    compose_raw,
    group_options,
    load_config,
    validate,
)
from relevance_kit.config.loading import _model_in
from relevance_kit.errors import ConfigError
from tests.conftest import REPO, files_under, run_stage

CONF = REPO / "conf"


def test_params_yaml_is_a_fresh_compose_of_conf() -> None:
    assert (REPO / "params.yaml").read_text() == compose([], CONF), (
        "params.yaml differs from conf/: run `relevance-kit compose` and commit params.yaml"
    )


def _paths(node: object, prefix: str = "") -> set[str]:
    """Dotted key paths of every mapping key in a nested config (list items by index)."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    return {
        path
        for key, value in items
        for path in (f"{prefix}{key}", *_paths(value, f"{prefix}{key}."))
    }


def _model_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of every field of the config models (through nested models, not lists)."""
    fields = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        fields.add(f"{prefix}{key}")
        nested = _model_in(field.annotation)
        if nested is not None and get_origin(field.annotation) not in (list, dict):
            fields |= _model_fields(nested, f"{prefix}{key}.")
    return fields


def test_params_yaml_holds_every_setting_a_stage_reads() -> None:
    """Stages read the validated config; validating params.yaml must fill in nothing, so no
    default lives only in relevance_kit/config/, out of DVC's sight."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    dumped = validate(raw, CONF).model_dump(mode="json", by_alias=True)
    missing = sorted(_paths(dumped) - _paths(raw))
    assert not missing, (
        f"params.yaml lacks {missing}: run `relevance-kit compose` and commit params.yaml"
    )
    assert dumped == raw
    nulls = _null_paths(raw)
    unlisted = {
        f
        for f in _model_fields(RelevanceConfig) - _paths(raw)
        if not any(f.startswith(n + ".") for n in nulls)
    }
    assert not unlisted, f"fields of the config models missing from params.yaml: {sorted(unlisted)}"


def _null_paths(raw: dict) -> set[str]:
    """Keys whose value is null: a model field set to None has no sub-fields to list."""
    found, todo = set(), [("", raw)]
    while todo:
        prefix, node = todo.pop()
        for key, value in node.items():
            if value is None:
                found.add(f"{prefix}{key}")
            elif isinstance(value, dict):
                todo.append((f"{prefix}{key}.", value))
    return found


# What `dvc exp run -S ...` composes: the default experiment, each experiment, and each option
# of each group on top of the default experiment.
COMPOSITIONS = [
    [],
    *([f"experiment={e}"] for e in group_options("experiment", CONF)),
    *([f"{g}={o}"] for g in GROUPS for o in group_options(g, CONF)),
]


@pytest.mark.parametrize("overrides", COMPOSITIONS, ids=lambda o: " ".join(o) or "default")
def test_validation_fills_nothing_into_what_dvc_composes(overrides: list[str]) -> None:
    """`dvc exp run -S group=option` writes params.yaml from Hydra's composition alone, with
    no pydantic defaults: every setting a stage reads must be in that composition, so
    validating it adds, drops and changes nothing (not even 1 to 1.0)."""
    raw = compose_raw(overrides, CONF)
    cfg = validate(raw, CONF, where=f"conf/ composed with {overrides}")  # ConfigError: a failure
    for override in overrides:
        group, option = override.split("=")
        assert (cfg.experiment if group == "experiment" else getattr(cfg, group).name) == option
    dumped = cfg.model_dump(mode="json", by_alias=True)
    assert _differences(raw, dumped) == [], "conf/ must write each setting as validated"
    assert dumped == raw


def _differences(raw: object, dumped: object, path: str = "") -> list[str]:
    """Where a validated config differs from the composition it was validated from: keys added
    or dropped, values changed, and types changed (a DVC param 1 is not 1.0)."""
    if isinstance(raw, dict) and isinstance(dumped, dict):
        found = [f"{path}{k}: only in the validated config" for k in dumped if k not in raw]
        found += [f"{path}{k}: dropped by validation" for k in raw if k not in dumped]
        for k in raw.keys() & dumped.keys():
            found += _differences(raw[k], dumped[k], f"{path}{k}.")
        return found
    if isinstance(raw, list) and isinstance(dumped, list) and len(raw) == len(dumped):
        return [
            d
            for i, (r, v) in enumerate(zip(raw, dumped))
            for d in _differences(r, v, f"{path.rstrip('.')}[{i}].")
        ]
    if type(raw) is not type(dumped) or raw != dumped:
        return [f"{path.rstrip('.')}: composed {raw!r}, validated {dumped!r}"]
    return []


def _config_models(model: type[BaseModel] = RelevanceConfig) -> set[type[BaseModel]]:
    """Every model reachable from `model` through its fields (lists and dicts included)."""
    found, todo = set(), [model]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo += filter(None, (_model_in(f.annotation) for f in current.model_fields.values()))
    return found


def test_no_config_model_field_has_a_default() -> None:
    """conf/ is the one home of every setting's value: a default in a model would be a second
    one, and one that `dvc exp run -S ...` never writes into params.yaml."""
    defaults = sorted(
        f"{model.__name__}.{name}"
        for model in _config_models()
        for name, field in model.model_fields.items()
        if not field.is_required()
    )
    assert len(_config_models()) > 40 and not defaults, defaults


@pytest.mark.parametrize(
    "override",
    [f"{g}={o}" for g in (*GROUPS, "experiment") for o in group_options(g, CONF)],
)
def test_every_config_file_composes_and_validates(override: str) -> None:
    group, option = override.split("=")
    raw = yaml.safe_load(compose([override], CONF))
    cfg = validate(raw, CONF)
    chosen = cfg.experiment if group == "experiment" else getattr(cfg, group).name
    assert chosen == option, f"conf/{group}/{option}.yaml must carry `name: {option}`"
    assert (
        cfg.model_dump(mode="json", by_alias=True) == raw
    )  # the dump is complete and re-validates to itself


def test_production_experiment_has_the_etsy_shape() -> None:
    cfg = validate(yaml.safe_load(compose(["experiment=etsy_gpu"], CONF)), CONF)
    assert (cfg.annotator.model, cfg.teacher.model, cfg.student.encoder) == (
        "o3",
        "Qwen/Qwen3-VL-4B-Instruct",
        "bert-base-uncased",
    )
    assert cfg.annotator.temperature is None and cfg.annotator.reasoning_effort == "medium"


def test_unknown_group_option_names_the_choices() -> None:
    with pytest.raises(ConfigError) as err:
        compose(["taxonomy=etsy5"], CONF)
    assert "etsy5" in str(err.value) and "etsy3" in str(err.value) and "esci4" in str(err.value)


def _raw(**edits: object) -> dict:
    raw = yaml.safe_load(compose(["experiment=ci_tiny"], CONF))
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value
    return raw


def test_wrong_key_names_path_and_allowed_keys() -> None:
    raw = _raw()
    raw["sampling"]["max_querys"] = 3
    with pytest.raises(ConfigError) as err:
        validate(raw, CONF)
    msg = str(err.value)
    assert "sampling.max_querys: unknown key" in msg and "max_queries" in msg


def test_wrong_type_names_path_and_value() -> None:
    with pytest.raises(ConfigError) as err:
        validate(_raw(evaluation__bootstrap_resamples="many"), CONF)
    assert "evaluation.bootstrap_resamples = 'many'" in str(err.value)


def test_wrong_nested_value_names_list_index() -> None:
    raw = _raw()
    raw["taxonomy"]["labels"][1]["gain"] = 7
    with pytest.raises(ConfigError) as err:
        validate(raw, CONF)
    assert "taxonomy.labels[1].gain = 7" in str(err.value)


def test_wrong_literal_lists_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        validate(_raw(golden__tie_break="coin_flip"), CONF)
    msg = str(err.value)
    assert "golden.tie_break = 'coin_flip'" in msg and "most_severe" in msg


def test_group_option_in_params_must_exist() -> None:
    with pytest.raises(ConfigError) as err:
        validate(_raw(teacher__name="gpt5_teacher"), CONF)
    msg = str(err.value)
    assert "teacher.name = 'gpt5_teacher'" in msg and "tiny_random" in msg


def test_taxonomy_must_map_the_dataset_labels() -> None:
    raw = _raw()
    del raw["taxonomy"]["source_maps"]["esci"]["C"]
    with pytest.raises(ConfigError) as err:
        validate(raw, CONF)
    assert "lacks source label(s) ['C']" in str(err.value)


def test_transfer_target_is_checked_like_the_experiments_own_data() -> None:
    raw = yaml.safe_load(compose(["transfer=homedepot"], CONF))
    del raw["taxonomy"]["source_maps"]["homedepot"]
    with pytest.raises(ConfigError) as err:
        validate(raw, CONF)
    assert "no source_maps.homedepot" in str(err.value) and "(transfer.data)" in str(err.value)
    raw = yaml.safe_load(compose(["transfer=homedepot"], CONF))
    raw["transfer"]["sampling"] = None
    with pytest.raises(ConfigError) as err:
        validate(raw, CONF)
    assert "given together or not at all; given: ['data', 'guidelines']" in str(err.value)
    with pytest.raises(ValueError, match="no transfer target"):
        validate(yaml.safe_load(compose(["transfer=none"], CONF)), CONF).transfer_target()


def test_guideline_version_in_force() -> None:
    cfg = validate(_raw(), CONF)
    import datetime as dt

    assert cfg.guidelines.version_at(dt.date(2019, 6, 1)).version == "2019.1"
    assert cfg.guidelines.version_at(dt.date(2022, 6, 1)).version == "2020.2"
    with pytest.raises(ConfigError, match="no version in force"):
        cfg.guidelines.version_at(dt.date(2010, 1, 1))


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({"sampling.max_querys": 3}, "sampling.max_querys: unknown key"),
        ({"seed": "forty-two"}, "seed = 'forty-two'"),
        ({"taxonomy.name": "etsy5"}, "choose one of: esci4, etsy3"),
    ],
)
def test_stage_refuses_bad_config_and_writes_nothing(project, edits: dict, expected: str) -> None:
    root: Path = project(edits=edits)
    result = run_stage("prepare", root)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert files_under(root, "data", "metrics") == []


def test_missing_params_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "params.yaml", CONF)


def test_teacher_kind_must_name_a_teacher_kind_class() -> None:
    for target, why in [
        ("relevance_kit.teacher.kinds.Decoder", "Decoder"),
        ("collections.OrderedDict", "is not a relevance_kit.teacher.kinds.TeacherKind"),
    ]:
        with pytest.raises(ConfigError) as err:
            validate(_raw(teacher__kind={"_target_": target}), CONF)
        msg = str(err.value)
        assert "teacher.kind" in msg and why in msg, msg
    with pytest.raises(ConfigError, match="teacher.kind"):
        validate(_raw(teacher__kind="causal_lm"), CONF)


def test_teacher_kind_decides_what_the_config_allows() -> None:
    """A classifier has no answer text for a rationale; only a vision kind sees images."""
    classifier = {"_target_": "relevance_kit.teacher.kinds.CrossEncoder"}
    with pytest.raises(ConfigError, match="CrossEncoder classifies directly"):
        validate(_raw(teacher__kind=classifier, teacher__rationale_in_target=True), CONF)
    vision = validate(
        _raw(teacher__kind={"_target_": "relevance_kit.teacher.kinds.VisionLM"}), CONF
    )
    assert vision.teacher.sees_images and not validate(_raw(), CONF).teacher.sees_images

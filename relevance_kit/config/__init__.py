"""The composed config: Hydra composition of `conf/` and pydantic validation of the result.

`relevance-kit compose` (and DVC, for `dvc exp run -S group=option`) composes `conf/` into
`params.yaml`. conf/ is the only home of settings: the models of this package have no
defaults, every group option writes every key, so whichever of the two writes params.yaml,
each setting a stage reads is a DVC param. Every stage starts with `load_config()`, which
validates the whole of params.yaml and fails with the key path, the bad value and what is
allowed. Group options carry their own `name:` (DVC drops Hydra's choice names), and that
name must be one of the files of the group's folder.

One module per group of conf/ (`data`, `taxonomy`, ..., `monitoring`; `paths` for the paths
of conf/config.yaml), `base` for what groups share, `root` for the whole config and
`loading` for composing, loading and the error messages.
"""

from relevance_kit.config.annotator import AnnotatorConfig, AnnotatorGate
from relevance_kit.config.data import DataConfig, DataFile
from relevance_kit.config.guidelines import GuidelineVersion
from relevance_kit.config.inference import InferenceConfig, RayLabelling
from relevance_kit.config.loading import (
    CONF_DIR,
    PARAMS_FILE,
    compose,
    compose_raw,
    group_options,
    load_config,
    validate,
)
from relevance_kit.config.monitoring import AbLogConfig, AbSimulation, MonitoringConfig
from relevance_kit.config.prompt import PromptConfig
from relevance_kit.config.root import GROUPS, RelevanceConfig
from relevance_kit.config.student import (
    StudentConfig,
    StudentExport,
    StudentHead,
    StudentService,
    saved_head,
)
from relevance_kit.config.taxonomy import TaxonomyConfig
from relevance_kit.config.teacher import LoraConfig, TeacherConfig

__all__ = [
    "CONF_DIR",
    "GROUPS",
    "PARAMS_FILE",
    "AbLogConfig",
    "AbSimulation",
    "AnnotatorConfig",
    "AnnotatorGate",
    "DataConfig",
    "DataFile",
    "GuidelineVersion",
    "InferenceConfig",
    "LoraConfig",
    "MonitoringConfig",
    "PromptConfig",
    "RayLabelling",
    "RelevanceConfig",
    "StudentConfig",
    "StudentExport",
    "StudentHead",
    "StudentService",
    "TaxonomyConfig",
    "TeacherConfig",
    "compose",
    "compose_raw",
    "group_options",
    "load_config",
    "saved_head",
    "validate",
]

"""The whole config: every group (the folders of conf/) with the rules across groups."""

from __future__ import annotations

from pydantic import model_validator

from relevance_kit.config.annotator import AnnotatorConfig
from relevance_kit.config.base import Strict
from relevance_kit.config.data import DataConfig
from relevance_kit.config.evaluation import EvaluationConfig
from relevance_kit.config.golden import GoldenConfig
from relevance_kit.config.guidelines import GuidelinesConfig
from relevance_kit.config.inference import InferenceConfig
from relevance_kit.config.integration import IntegrationConfig
from relevance_kit.config.monitoring import MonitoringConfig
from relevance_kit.config.paths import PathsConfig
from relevance_kit.config.prompt import PromptConfig
from relevance_kit.config.sampling import SamplingConfig
from relevance_kit.config.student import StudentConfig
from relevance_kit.config.taxonomy import TaxonomyConfig
from relevance_kit.config.teacher import TeacherConfig
from relevance_kit.config.trainer import TrainerConfig
from relevance_kit.config.transfer import TransferConfig

GROUPS = (
    "data", "taxonomy", "guidelines", "prompt", "sampling", "golden", "annotator", "teacher",
    "student", "trainer", "inference", "evaluation", "integration", "monitoring", "transfer",
)  # fmt: skip


class RelevanceConfig(Strict):
    seed: int
    training_seed: int
    experiment: str
    paths: PathsConfig
    data: DataConfig
    taxonomy: TaxonomyConfig
    guidelines: GuidelinesConfig
    prompt: PromptConfig
    sampling: SamplingConfig
    golden: GoldenConfig
    annotator: AnnotatorConfig
    teacher: TeacherConfig
    student: StudentConfig
    trainer: TrainerConfig
    inference: InferenceConfig
    evaluation: EvaluationConfig
    integration: IntegrationConfig
    monitoring: MonitoringConfig
    transfer: TransferConfig

    @model_validator(mode="after")
    def _cross_group(self) -> RelevanceConfig:
        self._check_dataset("", self.data, self.guidelines)
        if self.transfer.enabled:
            self._check_dataset("transfer.", self.transfer.data, self.transfer.guidelines)
        return self

    def _check_dataset(self, at: str, data: DataConfig, guidelines: GuidelinesConfig) -> None:
        """The taxonomy maps every source label of `data`, and each guidelines example has a
        label of the taxonomy; `at` prefixes the key paths in the messages."""
        source_map = self.taxonomy.source_maps.get(data.source_scheme)
        if source_map is None:
            raise ValueError(
                f"taxonomy {self.taxonomy.name!r} has no source_maps.{data.source_scheme} "
                f"for the {data.name!r} data ({at}data); it maps: {sorted(self.taxonomy.source_maps)}"
            )
        unmapped = sorted(set(data.source_labels) - set(source_map))
        if unmapped:
            raise ValueError(
                f"taxonomy.source_maps.{data.source_scheme} lacks source label(s) {unmapped} ({at}data)"
            )
        for v in guidelines.versions:
            for i, ex in enumerate(v.examples):
                label = ex.labels.get(self.taxonomy.name)
                if label not in self.taxonomy.ids:
                    raise ValueError(
                        f"{at}guidelines version {v.version} example {i} ({ex.query!r}) has label "
                        f"{label!r} for taxonomy {self.taxonomy.name!r}; allowed: {self.taxonomy.ids}"
                    )

    def transfer_target(self) -> RelevanceConfig:
        """This config with the transfer target's data, guidelines and sampling in place (and
        no transfer of its own): what builds the target's golden set as its own experiment does."""
        if not self.transfer.enabled:
            raise ValueError("transfer.data is null: this experiment has no transfer target")
        t = self.transfer
        return self.model_copy(
            update={
                "data": t.data, "guidelines": t.guidelines, "sampling": t.sampling,
                "transfer": TransferConfig(name="none", data=None, guidelines=None, sampling=None, tiers=[]),
            }
        )  # fmt: skip

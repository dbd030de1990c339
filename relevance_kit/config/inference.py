"""The `inference` group (conf/inference/): how a trained teacher scores pairs in bulk."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from relevance_kit.config.base import Strict


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
    ray: RayLabelling | None  # backend 'ray': the Ray Data job's settings
    sort_by_length: bool
    int8: bool  # onnx: dynamically int8-quantized weights (parity: bench_teacher.json)
    optimize: bool  # onnx: fuse the graph (ONNX Runtime's transformer optimiser) first
    int8_per_channel: bool  # onnx: int8 weight scales per output channel (else per tensor)
    threads: Annotated[int, Field(gt=0)] | None  # onnx: intra-op threads; None: torch's
    allow_spinning: bool  # onnx: idle intra-op threads busy-wait (else they sleep)
    parallel_batches: bool  # onnx: one batch per thread at once (else each on all threads)
    tensor_parallel_size: Annotated[int, Field(gt=0)]
    base_url: str | None
    served_model: str | None  # the server's model name; None = the first it lists
    api_key_env: str | None  # environment variable holding the key; never the key itself
    max_concurrency: Annotated[int, Field(gt=0)]
    timeout_s: Annotated[float, Field(gt=0.0)]

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

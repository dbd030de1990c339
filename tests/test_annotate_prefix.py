"""Annotator prefix reuse and cached-token cost (issue 15): the static part of the prompt
(system, guidelines, few-shot turns) comes first and is byte-identical across pairs; the
real llama.cpp server reuses it (its log says how many tokens per request); input tokens a
server reports as cached (`usage.prompt_tokens_details.cached_tokens`) cost the configured
cached price."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from relevance_kit.annotate.cache import Completion
from relevance_kit.annotate.client import Meter, OpenAIBackend
from relevance_kit.annotate.llama_server import prefix_reuse
from relevance_kit.annotate.run import annotate_pairs, open_annotator
from relevance_kit.config import compose, validate
from relevance_kit.errors import ConfigError
from relevance_kit.prompts import Shot, chat_messages
from tests.conftest import REPO
from tests.llama_server import llama_server  # noqa: F401  (the session fixture)


def _cfg(*overrides: str, **annotator: object):
    raw = yaml.safe_load(compose(["experiment=local_llm", *overrides], REPO / "conf"))
    raw["annotator"].update(annotator)
    return validate(raw, REPO / "conf")


SHOTS = (
    Shot("red mug", {"title": "Red ceramic mug"}, "relevant", "Same product, same colour."),
    Shot("red mug", {"title": "Blue lamp"}, "irrelevant", "Another product."),
)


def test_static_prefix_comes_first_and_is_byte_identical_across_pairs() -> None:
    cfg = _cfg()
    a = chat_messages(
        cfg.prompt,
        cfg.taxonomy,
        cfg.guidelines.current,
        "pumpkin onesie",
        {"title": "Pumpkin costume"},
        SHOTS,
    )
    b = chat_messages(
        cfg.prompt,
        cfg.taxonomy,
        cfg.guidelines.current,
        "silver hoops",
        {"title": "Hoop earrings", "brand": "Lumi"},
        SHOTS,
    )
    assert json.dumps(a[:-1]).encode() == json.dumps(b[:-1]).encode()  # system + shots
    assert [m["role"] for m in a] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "pumpkin onesie" in a[-1]["content"] and "pumpkin onesie" not in json.dumps(a[:-1])


def test_cached_input_tokens_cost_the_cached_price() -> None:
    prices = {"input": 2.0, "cached_input": 0.5, "output": 8.0}
    meter = Meter(prices, budget_usd=None)
    meter.add(Completion("{}", prompt_tokens=1000, completion_tokens=100, cached_input_tokens=800))
    meter.add(Completion("{}", prompt_tokens=1000, completion_tokens=100))  # nothing cached
    meter.add(
        Completion("{}", prompt_tokens=1000, completion_tokens=100, cached=True)
    )  # response cache
    expected = (200 * 2.0 + 800 * 0.5 + 100 * 8.0 + 1000 * 2.0 + 100 * 8.0) / 1e6
    summary = meter.summary()
    assert summary["cost_usd"] == pytest.approx(expected)
    assert summary["cached_input_tokens"] == 800 and summary["prompt_tokens"] == 2000
    assert summary["cost_usd_if_uncached"] == pytest.approx(
        expected + (1000 * 2.0 + 100 * 8.0) / 1e6
    )
    # no cached price configured: cached input tokens cost the input price
    plain = Meter({"input": 2.0, "output": 8.0}, budget_usd=None)
    plain.add(Completion("{}", prompt_tokens=1000, completion_tokens=100, cached_input_tokens=800))
    assert plain.cost_usd == pytest.approx((1000 * 2.0 + 100 * 8.0) / 1e6)
    assert _cfg("annotator=o3").annotator.price_per_million_tokens["cached_input"] == 0.5
    with pytest.raises(ConfigError, match="price_per_million_tokens"):
        _cfg(price_per_million_tokens={"cached_input": 0.5, "output": 8.0})


def _openai_shaped_server(port: int, cached_tokens: int):
    """A local endpoint answering in the OpenAI chat-completion shape WITH
    usage.prompt_tokens_details.cached_tokens. A stand-in on purpose: no real server that runs
    here reports cached tokens (llama-cpp-python's usage has no prompt_tokens_details; see
    test_llama_cpp_reuses_the_static_prefix), and OpenAI itself needs network and a key."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    def complete() -> dict:
        return {
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": '{"rationale": "r", "label": "relevant"}'}}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 20, "total_tokens": 1220,
                      "prompt_tokens_details": {"cached_tokens": cached_tokens}},
        }  # fmt: skip

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread


def test_openai_backend_reads_cached_tokens_from_usage() -> None:
    from relevance_kit.annotate.llama_server import free_port

    port = free_port()
    server, thread = _openai_shaped_server(port, cached_tokens=1024)
    try:
        cfg = _cfg(serve=None, base_url=f"http://127.0.0.1:{port}/v1", model="m",
                   price_per_million_tokens={"input": 2.0, "cached_input": 0.5, "output": 8.0})  # fmt: skip
        backend = OpenAIBackend(cfg.annotator, str(cfg.annotator.base_url))

        async def one() -> Completion:
            try:
                return await backend.complete({"messages": [{"role": "user", "content": "hi"}]})
            finally:
                await backend.close()

        completion = asyncio.run(one())
        assert (completion.prompt_tokens, completion.cached_input_tokens) == (1200, 1024)
        meter = Meter(cfg.annotator.price_per_million_tokens, None)
        meter.add(completion)
        assert meter.cost_usd == pytest.approx((176 * 2.0 + 1024 * 0.5 + 20 * 8.0) / 1e6)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.slow
def test_llama_cpp_reuses_the_static_prefix(llama_server, tmp_path: Path) -> None:  # noqa: F811
    """Real server: after the first request, each one evaluates only its pair's tokens (the
    static prefix is a prefix-match hit in the server's log). Its usage reports no cached
    tokens, so the meter counts none: cost accounting cannot see llama.cpp's reuse."""
    pairs = pd.DataFrame({"query_id": ["q1", "q2", "q3"], "listing_id": ["l1", "l2", "l3"],
                          "query": ["dog costume", "silver hoops", "rain boots"],
                          "title": ["Pumpkin dog costume", "Silver hoop earrings", "Kids rain boots"]})  # fmt: skip
    cfg = _cfg(serve=None, base_url=llama_server.base_url, model=llama_server.model,
               cache_path=str(tmp_path / "c.sqlite"), samples=1, max_concurrency=1)  # fmt: skip
    log_start = len(llama_server.log_path.read_text(errors="replace"))
    with open_annotator(cfg, SHOTS) as annotator:
        annotate_pairs(annotator, pairs)
        usage = annotator.request.meter.summary()
    hits = prefix_reuse(llama_server.log_path, since=log_start)
    shared = chat_messages(
        cfg.prompt, cfg.taxonomy, cfg.guidelines.current, "q", {"title": "t"}, SHOTS
    )[:-1]
    static = len(json.dumps(shared)) // 8  # a safe lower bound on its tokens (~4 chars each)
    assert len(hits) >= len(pairs) - 1, hits
    assert all(reused > static for reused, _ in hits[-2:]), (hits, static)  # the whole static part
    assert all(remaining < reused for reused, remaining in hits[-2:])
    assert usage["cached_input_tokens"] == 0 and usage["prompt_tokens"] > 0

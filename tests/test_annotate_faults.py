"""Faults a real server will not produce on demand — 429, 500, a hang past the timeout,
garbage text, a refused key, a spent budget — from a small scripted OpenAI-compatible HTTP
server written here (a stand-in ONLY for these faults; normal answers are tested against
llama.cpp's real server in test_annotate_llama.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pandas as pd
import pytest
import yaml

from relevance_kit.annotate.cache import ResponseCache
from relevance_kit.annotate.client import (
    BudgetExceeded,
    Meter,
    OpenAIBackend,
    Requester,
    ServerUnavailable,
)
from relevance_kit.annotate.graph import Annotator
from relevance_kit.annotate.run import annotate_pairs
from relevance_kit.config import compose, validate
from relevance_kit.errors import ConfigError, RelevanceKitError
from tests.conftest import REPO

GOOD = '{"rationale": "Same kind of item.", "label": "relevant"}'


@dataclass
class FaultServer:
    """Answers POST /v1/chat/completions from a script: ("status", 429), ("hang", seconds),
    ("text", content); an empty script answers GOOD. Counts requests."""

    script: list[tuple[str, object]] = field(default_factory=list)
    requests: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self) -> tuple[str, object]:
        with self.lock:
            self.requests += 1
            return self.script.pop(0) if self.script else ("text", GOOD)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    state = FaultServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            kind, arg = state.next_action()
            if kind == "hang":
                time.sleep(float(arg))
            if kind == "status":
                body = json.dumps({"error": {"message": f"scripted {arg}", "type": "x"}}).encode()
                self._send(int(arg), body)
                return
            content = GOOD if kind == "hang" else str(arg)
            body = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }).encode()  # fmt: skip
            self._send(200, body)

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


def _annotator(server: FaultServer, tmp_path: Path, **edits: object) -> Annotator:
    raw = yaml.safe_load(compose(["experiment=local_llm", "prompt.n_shots=0"], REPO / "conf"))
    raw["annotator"].update(
        {
            "serve": None,
            "base_url": server.url,
            "max_retries": 2,
            "timeout_s": 1.0,
            "samples": 1,
            **edits,
        }
    )
    cfg = validate(raw, REPO / "conf")
    a = cfg.annotator
    meter = Meter(a.price_per_million_tokens, a.budget_usd)
    requester = Requester(
        OpenAIBackend(a, str(a.base_url)),
        ResponseCache(tmp_path / "cache.sqlite"),
        meter,
        a.max_concurrency,
    )
    return Annotator(a, cfg.prompt, cfg.taxonomy, cfg.guidelines.current, (), requester, cfg.seed)


def _pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame({"query_id": [f"q{i}" for i in range(n)], "listing_id": [f"l{i}" for i in range(n)],
                         "query": ["red scarf"] * n, "title": [f"Red wool scarf {i}" for i in range(n)]})  # fmt: skip


def test_429_and_500_are_retried_then_succeed(fault_server: FaultServer, tmp_path: Path) -> None:
    fault_server.script = [("status", 429), ("status", 500)]
    results = annotate_pairs(_annotator(fault_server, tmp_path), _pairs(1))
    assert results["label"].tolist() == ["relevant"]
    assert fault_server.requests == 3  # two faults, one success (max_retries = 2)


def test_a_hang_past_the_timeout_is_retried(fault_server: FaultServer, tmp_path: Path) -> None:
    fault_server.script = [("hang", 2.5)]
    results = annotate_pairs(_annotator(fault_server, tmp_path), _pairs(1))
    assert results["label"].tolist() == ["relevant"] and fault_server.requests == 2


def test_retries_exhausted_stops_with_a_resumable_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.script = [("status", 503)] * 3
    with pytest.raises(
        RelevanceKitError, match=r"0/1 pairs finished.*re-running pays only for the rest"
    ) as err:
        annotate_pairs(_annotator(fault_server, tmp_path), _pairs(1))
    assert isinstance(
        err.value.__cause__, openai.InternalServerError
    )  # the server's 503, kept as the cause


def test_garbage_is_reasked_then_recorded_invalid_with_raw_text(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.script = [("text", "lol no"), ("text", "still <b>not</b> json")]
    results = annotate_pairs(_annotator(fault_server, tmp_path, max_reasks=1), _pairs(1))
    row = results.iloc[0]
    assert row["label"] is None and row["route"] == "review" and row["n_invalid"] == 1
    assert json.loads(row["invalid_answers"]) == ["still <b>not</b> json"]
    assert fault_server.requests == 2  # first ask + one re-ask


def test_garbage_then_a_good_reask_is_accepted(fault_server: FaultServer, tmp_path: Path) -> None:
    fault_server.script = [("text", "lol no")]
    results = annotate_pairs(_annotator(fault_server, tmp_path, max_reasks=1), _pairs(1))
    assert results.iloc[0]["label"] == "relevant" and fault_server.requests == 2


def test_refused_key_fails_fast_without_retrying(
    fault_server: FaultServer, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("RK_TEST_KEY", "sk-wrong")
    fault_server.script = [("status", 401)] * 50
    with pytest.raises(ConfigError, match="refused the API key"):
        annotate_pairs(
            _annotator(fault_server, tmp_path, api_key_env="RK_TEST_KEY", max_concurrency=2),
            _pairs(10),
        )
    assert fault_server.requests <= 2  # only the requests already in flight, no retries


def test_budget_stops_cleanly_and_keeps_paid_answers(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    # each answer: 100 prompt + 20 completion tokens at $1/$1 per million = $0.00012
    prices = {"input": 1.0, "output": 1.0}
    annotator = _annotator(
        fault_server, tmp_path, budget_usd=0.0003, price_per_million_tokens=prices
    )
    with pytest.raises(BudgetExceeded, match="budget reached"):
        annotate_pairs(annotator, _pairs(6))
    paid = fault_server.requests
    assert 3 <= paid < 6 and len(ResponseCache(tmp_path / "cache.sqlite")) == paid
    results = annotate_pairs(
        _annotator(fault_server, tmp_path, budget_usd=1.0, price_per_million_tokens=prices),
        _pairs(6),
    )
    assert results["label"].notna().all() and fault_server.requests == 6  # only the unpaid rest


def _closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connecting is refused (a real network fault)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_api_is_reported_at_once_then_stops_with_the_cache_intact(
    fault_server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    annotate_pairs(_annotator(fault_server, tmp_path), _pairs(2))  # two answers paid and cached
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    started = time.perf_counter()
    with pytest.raises(ServerUnavailable) as caught:
        annotate_pairs(
            _annotator(fault_server, tmp_path, base_url=url, max_concurrency=2, timeout_s=120.0),
            _pairs(4),
        )
    seconds = time.perf_counter() - started
    err = capsys.readouterr().err
    assert (
        f"{url}: " in err and "Connect" in err and "retry 1 of 2" in err and "retry 2 of 2" in err
    ), err
    assert err.count("retry 1 of 2") == 1, "concurrent requests failing alike are reported once"
    message = str(caught.value)
    assert (
        url in message and "still after 2 retries" in message and "2/4 pairs finished" in message
    ), message
    assert seconds < 10, (
        f"{seconds:.1f} s before the run stopped"
    )  # backoff 0.5 s + 1 s, not timeout_s
    assert len(ResponseCache(tmp_path / "cache.sqlite")) == 2  # the paid answers are kept

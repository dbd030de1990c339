# The two commands of the quickstart: `make demo` (the whole cascade, cpu_demo) and
# `make test`. Both create .venv and install the project first when needed.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install

install: $(VENV)/.installed

# torch==2.13.0 first: the CPU wheel that lies on this machine's disk (a bare `torch`
# requirement would pull a multi-GB CUDA build).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: install
	dvc repro

test: install
	python -m pytest

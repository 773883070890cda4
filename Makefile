# Two commands for a newcomer (see README.md):
#   make book   - create .venv if missing, install salrank, build the book on the embedded sample
#   make test   - same environment, the whole test suite
# Everything else here is a helper for those two.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.salrank-installed
PYTEST_ARGS ?=

.PHONY: book test venv lint clean-book bench help

help:
	@echo "make book   build the Jupyter Book on the embedded sample -> _build/html/index.html"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff"

venv: $(STAMP)

# (Re)install when the package metadata changes. torch and friends come as version ranges
# from pyproject.toml; pip picks the newest release your platform allows.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[test,dev]"
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build book --warningiserror --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check salrank tests notebooks

bench: $(STAMP)
	$(BIN)/salrank bench --quick --json _build/bench.json

clean-book:
	rm -rf _build

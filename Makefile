# Every target sets itself up: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo dev test bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m costalloc_pipeline.demo

dev: install
	$(BIN)/python -m costalloc_pipeline.dev

test: install
	$(BIN)/pytest -n 2 --dist loadfile

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .dagster_home

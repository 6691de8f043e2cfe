# Every target sets itself up: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo dev test test-ui check bench soak clean

# The lock pins Playwright's Python package too; its browser is Debian's /usr/bin/chromium
# (`make browser`), so `playwright install` is never run.
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

# The browser of the UI tests: Debian's Chromium, installed when missing (as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	@command -v chromium

test: install browser
	$(BIN)/pytest -n 2 --dist loadfile

# The Dagster UI after a real move, in Chromium (part of `make test`); screenshots in build/ui-screenshots/.
test-ui: install browser
	$(BIN)/pytest -q tests/ui

# The gate CI runs before the tests: lint and format (ruff), types (mypy, strict; pyproject.toml).
check: install
	$(BIN)/ruff check costalloc_pipeline tests bench
	$(BIN)/ruff format --check costalloc_pipeline tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

# Many more randomized interleavings of the mover than `make test` runs (tests/mover/test_interleavings.py),
# both backends at once, from seed SOAK_SEED_START (past the seeds `make test` runs); prints how many
# schedules ran and how many broke an invariant. A seed it names replays with
# COSTALLOC_SEED=<seed> .venv/bin/pytest tests/mover/test_interleavings.py -k <backend>
SOAK_SCHEDULES ?= 5000
SOAK_SEED_START ?= 1000
soak: install
	rm -rf build/soak
	COSTALLOC_SCHEDULES=$(SOAK_SCHEDULES) COSTALLOC_SEED_START=$(SOAK_SEED_START) COSTALLOC_SOAK_DIR=build/soak \
		$(BIN)/pytest -n 2 --dist load -q --tb=no tests/mover/test_interleavings.py; \
		status=$$?; PYTHONPATH=tests $(BIN)/python tests/mover/simulation.py report build/soak; exit $$status

clean:
	rm -rf $(VENV) data .dagster_home

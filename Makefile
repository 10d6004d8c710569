# The two commands of the README: `make run` (the main job on the embedded default) and
# `make test`. Both do their own set-up through .ci/setup, idempotently.
VENV ?= .venv
export VENV
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup run test unit lint bench dist clean

setup:
	@./.ci/setup

run: setup
	@./examples/quickstart.sh

# One whole-suite run at a time per machine: overlapping runs starve each other's emulated
# guests and turn timeouts into failures. A second `make test` waits for the first
# (the lock file is shared by every checkout; DVP_TEST_LOCK=/dev/null opts out). tests/run.sh runs
# the unit tests and two streams of integration tests in pytests beside each other.
TEST_LOCK ?= $(or $(DVP_TEST_LOCK),/tmp/dvp-make-test.lock)

test: setup
	flock $(TEST_LOCK) ./tests/run.sh $(PYTEST_ARGS)

unit: setup
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check installer controlplane nodeimage tests bench
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m bench.apiserver

dist: setup
	nice -n 10 $(VENV)/bin/pyinstaller --noconfirm --log-level WARN --workpath build/pyinstaller --distpath build/dist build.spec

clean:
	rm -rf build dist .pytest_cache

# Two entry points (see README): `make demo` and `make test`. Both create .venv/ with
# python3 -m venv and install the package from pyproject.toml, reusing a complete venv.
# `make test-fast`: the tests not marked slow (nothing trains or exports), about a minute.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.keras-s2s-installed

.PHONY: demo test test-fast venv clean-venv

venv: $(STAMP)

# The stamp is written only after a successful install, so an interrupted install is redone.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pipelines.demo

# pytest-xdist: one test process per core of the 2-core CI machine (TEST_WORKERS=0 runs in one
# process, e.g. for pdb). --dist loadfile keeps each test file in one worker, so a file's shared
# exports and trained runs are made once.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

clean-venv:
	rm -rf $(VENV)

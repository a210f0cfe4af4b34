# Two entry points: `make run` (the default benchmark) and `make test`.
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
WORKDIR ?= results/default
CONFIG ?= configs/default.py

.PHONY: run test smoke clean

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: $(VENV_PYTHON) setup.cfg pyproject.toml
	$(VENV_PYTHON) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV_PYTHON) setup.cfg pyproject.toml
	$(VENV_PYTHON) -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed-run
	$(VENV_PYTHON) -m benchmarks.run --config=$(CONFIG) --workdir=$(WORKDIR)

smoke: $(VENV)/.installed-run
	$(VENV_PYTHON) -m benchmarks.run --config=configs/smoke.py --workdir=results/smoke

test: $(VENV)/.installed-test
	$(VENV_PYTHON) -m pytest tests

clean:
	rm -rf $(VENV) results/smoke

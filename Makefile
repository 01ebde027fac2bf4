# Two commands do all set-up on a fresh clone:
#   make demo   create .venv if missing, install zoo, train the seed CNN on the bundled digits
#   make test   same set-up, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.zoo-installed
WORKDIR ?= runs/demo-seed-cnn

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/zoo train seed_cnn --data digits --steps 600 --workdir $(WORKDIR)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal tests

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/seed_models.py --steps 30 --repeats 9 --write BENCHMARKS.md

clean:
	rm -rf runs .pytest_cache

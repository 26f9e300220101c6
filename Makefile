# One-command entry points. `make demo` and `make test` set up the environment first if needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= lab,test,baselines,onnx,docs,cluster

.PHONY: setup demo test bench lint docs clean-data

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: where pip is capped (see README) this takes the build on disk
	$(PY) -m pip install -q torch torchvision
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: setup
	$(PY) -m workbench demo --out demo_runs

test: setup
	$(PY) -m pytest -q -p no:cacheprovider --durations=20

bench: setup
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: setup
	$(VENV)/bin/ruff check workbench widgets tests benchmarks

# the documentation site (mkdocs.yml); --strict: a broken link or a docstring mkdocstrings cannot read fails
docs: setup
	$(PY) -m mkdocs build --strict --site-dir site

clean-data:
	rm -rf datasets/synth-* demo_runs

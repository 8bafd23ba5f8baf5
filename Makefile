# make run   — set everything up and open segstudio on its bundled demo
# make test  — set everything up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.segstudio-installed

.PHONY: setup run test bench lint clean

$(STAMP): pyproject.toml installer/check-build-tools.sh
	bash installer/check-build-tools.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/segstudio

test: setup
	bash installer/install-system-deps.sh
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/lint-imports --no-cache

bench: setup
	$(BIN)/python bench/bench_startup.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

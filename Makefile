# make run   — set everything up and open segstudio on its bundled demo
# make test  — set everything up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.segstudio-installed

.PHONY: setup run test test-other-cpus bench lint clean

$(STAMP): pyproject.toml installer/check-build-tools.sh
	bash installer/check-build-tools.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/segstudio

# The Lessons window tests run in a process of their own: in the whole suite's one process a
# segfault came while an earlier test's window was torn down during a lab's measurement (it
# never came in smaller runs, nor in the app, which has one window).
LESSON_TESTS := tests/ui/test_lessons_menu.py

test: setup
	bash installer/install-system-deps.sh
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider --ignore=$(LESSON_TESTS)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider $(LESSON_TESTS)
	$(MAKE) --no-print-directory test-other-cpus

# Users' CPUs differ from this one. The numeric tests run again with the SIMD kernels of torch
# (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA) and OpenCV (OPENCV_CPU_DISABLE) held to
# what other machines have: AVX-512 without bf16 units, AVX2, and no vector extensions at all.
NUMERIC_TESTS := tests/models tests/train/test_bundled.py tests/ui/test_demo.py
PYTEST_NUMERIC := QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider $(NUMERIC_TESTS)

test-other-cpus: setup
	ONEDNN_MAX_CPU_ISA=AVX512_CORE $(PYTEST_NUMERIC)
	ONEDNN_MAX_CPU_ISA=AVX2 OPENCV_CPU_DISABLE=AVX512F $(PYTEST_NUMERIC)
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 OPENCV_CPU_DISABLE=AVX512F,AVX2,FMA3,AVX $(PYTEST_NUMERIC)

lint: setup
	$(BIN)/lint-imports --no-cache

# A short version of every benchmark in bench/ (start-up included), one table: a few minutes.
bench: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# The README's two commands: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test test-all test-fast bench clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "V2S needs Python 3.11 (found %d.%d); set PYTHON=/path/to/python3.11" % sys.version_info[:2])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/base.txt -r requirements/dev.txt
	touch $@

setup: $(VENV)/.installed

# Optional extras (Ray, aeon's MiniRocket): the tests exercise them, the demo does not need them.
$(VENV)/.extras: $(VENV)/.installed requirements/extra.txt
	$(PY) -m pip install --quiet -r requirements/extra.txt
	touch $@

demo: setup
	$(PY) v2s_main.py

# The tests run in TEST_JOBS worker processes (pytest-xdist), TensorFlow on one thread in each: most of a test's time
# is single-threaded (tracing, process start-up), so two workers on 2 cores beat one with two threads (measured on
# 2 cores: 212 tests in 11.4 minutes against 20.2 one at a time).
TEST_JOBS ?= 2
# --dist loadgroup: tests marked with one xdist_group share a worker (and a module fixture made once).
TEST := TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 $(PY) -m pytest -q -n $(TEST_JOBS) --dist loadgroup

# make test (CI, under 12 minutes on 2 cores) leaves out the tests marked heavy: end-to-end runs of options and
# compatibility paths (--select, --refit, --ema, the fresh-process resume, V2Su, MiniRocket, pretraining stages,
# other source architectures, several sources, the Ray cluster) whose mechanisms the default-path tests share;
# make test-all runs every test.
test: $(VENV)/.extras
	$(TEST) -m "not heavy"

test-all: $(VENV)/.extras
	$(TEST)

test-fast: $(VENV)/.extras
	$(TEST) -m "not slow"

bench: setup
	$(PY) bench/bench_source_model.py
	$(PY) bench/bench_v2s.py

clean:
	rm -rf $(VENV) data .pytest_cache

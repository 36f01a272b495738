# The two commands: `make demo` and `make test`. Both start from nothing but python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean redis-server-installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Tests start private redis-servers; install the binary when the machine lacks it.
redis-server-installed:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy --strict src

test: $(STAMP) redis-server-installed lint
	$(VENV)/bin/pytest -n 2

# Side-by-side against the peers (never part of `make test`): one virtualenv per peer under
# bench/.venvs/, pinned by bench/peers/requirements/<peer>.txt (they need incompatible
# redis-py versions) and rebuilt when that file changes; then bench/compare.py starts a
# private redis-server and writes bench/results/RESULTS.md. BENCH_ARGS passes options on.
bench: $(STAMP) redis-server-installed
	@for peer in celery rq dramatiq huey arq; do \
	  venv=bench/.venvs/$$peer; pins=bench/peers/requirements/$$peer.txt; \
	  if [ ! -f $$venv/.installed ] || [ $$pins -nt $$venv/.installed ]; then \
	    echo "building $$venv from $$pins"; rm -rf $$venv; \
	    $(PYTHON) -m venv $$venv && $$venv/bin/python -m pip install --quiet -r $$pins \
	      && touch $$venv/.installed || exit 1; \
	  fi; \
	done
	$(PY) bench/compare.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

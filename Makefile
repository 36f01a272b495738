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

bench: $(STAMP) redis-server-installed
	$(PY) bench/sqlite.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

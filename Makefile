# One command each for a fresh machine: `make test`, `make demo`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pins torch to the CPU wheel available here; on your machine use `make test CONSTRAINTS=`.
CONSTRAINTS ?= constraints-cpu.txt
EXTRAS ?= dev

.PHONY: install test test-fast demo lint clean web

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

# The quick subset (under a minute): no training runs, subprocesses, servers or browser.
test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser"

# onnxruntime-web and gifenc for `affinegan export --web`, pinned by web/package-lock.json.
web: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --ignore-scripts

demo: install
	$(VENV)/bin/affinegan demo

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) demo_out .pytest_cache

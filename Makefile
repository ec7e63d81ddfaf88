# The two commands that matter: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test serve migrate lint bench clean env-example

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt deploy/requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

## run: set up and serve the product on its embedded default at http://127.0.0.1:8000
run: $(VENV)/.run-installed
	mkdir -p var
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py ensure_admin --site-url http://$(HOST):$(PORT)
	$(PY) -m gateway_project.serve -b $(HOST) -p $(PORT)

## test: set up and run the whole test suite
test: $(VENV)/.dev-installed
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy (with django-stubs), both configured in pyproject.toml
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

## env-example: rewrite .env.example from the settings table (gateway_project/settings/table.py)
env-example: $(VENV)/.run-installed
	$(PY) -m gateway_project.settings.env_example

bench: $(VENV)/.dev-installed
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) var

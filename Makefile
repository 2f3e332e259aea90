# make run   - install, migrate, seed the demo, start web, Celery worker and beat
# make test  - install and run the test suite (DATABASE_URL picks the database)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: run test install lint bench

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py dev_superuser
	@echo "CX Manager: http://$(HOST)/admin/  (admin / admin). Ctrl-C stops web, worker and beat."
	PATH="$(abspath $(VENV))/bin:$$PATH" HOST=$(HOST) $(VENV)/bin/honcho start

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/purchases.py

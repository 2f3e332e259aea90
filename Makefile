# make run   - install, migrate, seed the demo, print a demo API key, start web, Celery
#              worker and beat
# make test  - install and run the test suite (DATABASE_URL picks the database)
# make serve - the production stack: migrate as the owner, grant the app role,
#              collectstatic, then gunicorn, worker and beat as the app role
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: run serve test install lint bench screenshots

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
	$(PY) manage.py dev_api_key --host $(HOST)
	@echo "CX Manager: http://$(HOST)/admin/  (admin / admin). Ctrl-C stops web, worker and beat."
	PATH="$(abspath $(VENV))/bin:$$PATH" HOST=$(HOST) $(PY) -m loyalty_site.env_file \
		$(VENV)/bin/honcho -e /dev/null start

# Production needs these from the environment (or .env): no default would be right.
# DATABASE_URL is the application's role, MIGRATE_DATABASE_URL the tables' owner (docs/deploy.md).
SERVE_VARS := DATABASE_URL MIGRATE_DATABASE_URL CELERY_BROKER_URL SECRET_KEY ALLOWED_HOSTS

serve: install
	@missing=""; for v in $(SERVE_VARS); do \
		[ -n "$$(printenv $$v)" ] || grep -qs "^$$v=." .env || missing="$$missing $$v"; \
	done; \
	for v in EMAIL_URL EMAIL_BACKEND; do \
		[ -n "$$(printenv $$v)" ] || grep -qs "^$$v=." .env || continue; mail=1; \
	done; \
	[ -n "$$mail" ] || missing="$$missing EMAIL_URL"; \
	if [ -n "$$missing" ]; then \
		echo "make serve: set$$missing in the environment (see README, Production)." >&2; exit 1; \
	fi
	DEBUG=false $(PY) manage.py migrate --noinput --database owner
	DEBUG=false $(PY) manage.py grant_app_role --database owner
	DEBUG=false $(PY) manage.py collectstatic --noinput
	@# The release before is stopped here (make serve runs the whole stack): finish what
	@# it wrote while the migration ran (docs/deploy.md).
	DEBUG=false MIGRATE_DATABASE_URL= $(PY) manage.py finish_upgrade
	@# Web, worker and beat never hold the owner's credentials: Procfile.prod empties
	@# MIGRATE_DATABASE_URL in each. They read .env as manage.py does (loyalty_site.env_file).
	DEBUG=false MIGRATE_DATABASE_URL= PATH="$(abspath $(VENV))/bin:$$PATH" HOST=$(HOST) \
		$(PY) -m loyalty_site.env_file $(VENV)/bin/honcho -e /dev/null -f Procfile.prod start

# One test process per core (pytest-xdist), each with its own test database; at most 8,
# each with its own Redis database after CACHE_URL's (Redis has 16).
test: install
	$(VENV)/bin/pytest -n auto --maxprocesses 8

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/purchases.py

# The README's pictures, taken by the browser test of the demo (needs Debian's chromium).
screenshots: install
	SCREENSHOTS_DIR=docs/screenshots $(VENV)/bin/pytest tests/browser -k demo_data

# The two commands: `make run` (embedded: SQLite, a server-less broker, mail to the console) and
# `make test` (everything CI runs; PostgreSQL and Redis when DATABASE_URL/CELERY_BROKER_URL are set).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := .tools/bin/uv
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format env demo worker bench clean

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

env: $(UV)
	$(UV) sync --locked --quiet

run: env
	@mkdir -p .run/broker/queue .run/broker/processed
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=1 $(PY) manage.py seed_demo
	@echo ""
	@echo "  Postmortems is starting at http://$(HOST):$(PORT)/  (Ctrl-C stops the web server and the worker)"
	@echo ""
	@trap 'kill 0' INT TERM EXIT; \
	  DJANGO_DEBUG=1 .venv/bin/celery -A postmortems worker -B --pool solo --concurrency 1 \
	    --without-mingle --without-gossip --loglevel INFO --pidfile= \
	    --schedule .run/celerybeat-schedule & \
	  DJANGO_DEBUG=1 SITE_URL=http://$(HOST):$(PORT) $(PY) manage.py runserver $(HOST):$(PORT)

test: env
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

format: env
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: env
	bash bench/run.sh

clean:
	rm -rf .venv .tools .run db.sqlite3 staticfiles test-artifacts

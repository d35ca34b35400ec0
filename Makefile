# favsync: `make run` serves on http://127.0.0.1:5000, `make test` runs the tests.
PYTHON ?= python3
# `make run PORT=5001` (or FLASK_RUN_PORT=5001 make run) serves on another port.
PORT ?= $(or $(FLASK_RUN_PORT),5000)
VENV := .venv
BIN := $(VENV)/bin
# Development targets run in debug mode: a secret key is kept in instance/ and
# emails go to the console. Set FLASK_DEBUG=0 (and FAVSYNC_*) for real settings.
DEV := FLASK_DEBUG=$${FLASK_DEBUG:-1}

.PHONY: install run test test-postgres test-browser bench bench-scale bench-workers serve worker deliver upgrade migration clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "favsync needs Python 3.11 or newer: make PYTHON=python3.12 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,postgres,redis]"
	touch $@

run: install
	$(DEV) $(BIN)/flask --app wsgi db upgrade
	$(DEV) $(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

test: install
	$(BIN)/python -m pytest

# The same suite on PostgreSQL and Redis at 127.0.0.1 (a fresh database per run);
# the schema fuzzer runs in-process on SQLite and is not repeated here.
test-postgres: install
	FAVSYNC_TEST_BACKEND=postgres $(BIN)/python -m pytest -m "not fuzz"

# End-to-end scenarios in real headless Chromium (Debian's /usr/bin/chromium:
# apt-get install -y chromium), against gunicorn and a real SMTP sink.
test-browser: install
	FAVSYNC_TEST_BROWSER=1 $(BIN)/python -m pytest tests/browser

# favsync beside the least-work reference (bench/bare_app.py), in alternating rounds,
# on PostgreSQL, Redis and RabbitMQ at 127.0.0.1. `make bench ARGS="--seconds 2 --rounds 1"`;
# `.venv/bin/python bench/run.py --help` lists the options (worker class, threads, ...).
bench: install
	$(BIN)/python bench/run.py $(ARGS)

# The same, with a second database of 1,000,000 favourites across 100,000 more clients
# measured in the same rounds.
bench-scale: install
	$(BIN)/python bench/run.py --scale $(ARGS)

# GET and the no-op sync under gunicorn's sync and gthread workers, at worker and
# thread counts that fit 2 cores.
bench-workers: install
	$(BIN)/python bench/run.py --compare-workers $(ARGS)

serve: install
	$(BIN)/gunicorn --config gunicorn.conf.py

# Celery worker delivering the outbox (needs FAVSYNC_CELERY_BROKER_URL, as `make serve` does);
# --beat also runs the sweep every FAVSYNC_SWEEP_INTERVAL seconds (run exactly one beat).
worker: install
	$(BIN)/celery -A wsgi:celery worker --loglevel INFO $(WORKER_ARGS)

# Deliver every due email and webhook once (for cron); `make deliver ARGS=--loop` keeps going.
deliver: install
	$(DEV) $(BIN)/flask --app wsgi favsync deliver $(ARGS)

upgrade: install
	$(DEV) $(BIN)/flask --app wsgi db upgrade

migration: install
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"'; exit 1; }
	$(DEV) $(BIN)/flask --app wsgi db migrate -m "$(m)"

clean:
	rm -rf $(VENV) instance .pytest_cache

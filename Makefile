# The two commands: `make run` (everything on the embedded defaults) and `make test`.
SHELL := /bin/bash
UV := $(shell for c in uv /usr/local/bin/uv $$HOME/.local/bin/uv; do $$c --version >/dev/null 2>&1 && { echo $$c; break; }; done)
ifeq ($(UV),)
UV := $(CURDIR)/.cache/uv-bin/bin/uv
endif
PY := $(UV) run --frozen python
HOST ?= 127.0.0.1
PORT ?= 8000
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: install run test lint check bench reset-demo clean

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --prefix $(CURDIR)/.cache/uv-bin uv
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced

## run: migrate, load the sample and demo strategies, start the engine and daphne on :8000
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo
	@echo ""
	@echo "  Stocktrader is starting on http://$(HOST):$(PORT)/  (sign in as demo / demo-password)"
	@echo "  Admin: http://$(HOST):$(PORT)/admin/   API: http://$(HOST):$(PORT)/api/   Health: http://$(HOST):$(PORT)/health"
	@echo ""
	@trap 'kill 0' INT TERM EXIT; \
	  if $(PY) manage.py help run_trader >/dev/null 2>&1; then $(PY) manage.py run_trader & fi; \
	  $(UV) run --frozen daphne -b $(HOST) -p $(PORT) config.asgi:application

## test: the whole suite with coverage (floor in pyproject.toml)
test: install
	DJANGO_IGNORE_DOTENV=1 LOG_DIR=$(CURDIR)/.cache/test-logs $(UV) run --frozen pytest -n 2 --dist loadgroup \
	  --cov --cov-report=term --cov-report=html:.cache/htmlcov $(PYTEST_ARGS)

## lint: ruff, and the import contract (one-way layers) in pyproject.toml
lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen lint-imports

check: install
	DJANGO_IGNORE_DOTENV=1 $(PY) manage.py check
	DJANGO_IGNORE_DOTENV=1 $(PY) manage.py makemigrations --check --dry-run

bench: install
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

## reset-demo: forget the embedded database so the next `make run` replays the sample again
reset-demo:
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm
	rm -rf .cache/locks

clean:
	rm -rf .venv .cache db.sqlite3 logs staticfiles

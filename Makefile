# `make run` and `make test` are all a fresh machine needs (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock 2>/dev/null | cksum | cut -d' ' -f1)

# The browser editor (frontend/): npm packages, the TypeScript types generated from the
# API's OpenAPI document (with the block catalog its tests run on), and the Vite build that
# Django serves. Nothing built is committed.
NPM_STAMP := frontend/node_modules/.installed
API_TYPES := frontend/src/api/schema.d.ts
TEST_CATALOG := frontend/src/test/catalog.json
EDITOR := frontend/dist/manifest.json
# (The API's document holds the run settings' schema, made from the engine's TrainConfig.)
API_SOURCES := $(shell find builder compute/jobs compute/engine -name '*.py' -not -path '*/migrations/*' 2>/dev/null)
EDITOR_SOURCES := $(shell find frontend/src -type f -not -name 'schema.d.ts' -not -name 'openapi.json' -not -name 'catalog.json' 2>/dev/null) \
	frontend/vite.config.ts frontend/tsconfig.json
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint bench install editor

install: $(STAMP) $(EDITOR)

editor: $(EDITOR)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

# npm ci: exactly the lock file, which lists every platform's optional packages, so set-up
# leaves the checkout as it was.
$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(API_TYPES): $(STAMP) $(NPM_STAMP) $(API_SOURCES)
	$(BIN)/python manage.py spectacular --format openapi-json --file frontend/src/api/openapi.json
	cd frontend && npm run --silent gen

# The editor's tests run on the block catalog as GET /api/blocks serves it.
$(TEST_CATALOG): $(STAMP) $(API_SOURCES)
	$(BIN)/python manage.py catalog_fixture --file $@

$(EDITOR): $(NPM_STAMP) $(API_TYPES) $(TEST_CATALOG) $(EDITOR_SOURCES)
	cd frontend && npm run --silent build

# The end-to-end tests drive Debian's Chromium (Playwright cannot download a browser here).
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get install -y -q chromium || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

run: $(STAMP) $(EDITOR)
	$(BIN)/shipyard up

test: $(STAMP) $(EDITOR) $(CHROMIUM)
	cd frontend && npm test --silent
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) $(API_TYPES) $(TEST_CATALOG)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd frontend && npm run --silent typecheck

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_engine.py

# The README's two commands: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch lies on disk; a newer or unpinned torch would download a multi-GB CUDA build.
TORCH_CPU := torch==2.13.0
export MODEL_CACHE_DIR ?= $(CURDIR)/model_cache

.PHONY: demo test install models protos constraints system-deps up down bench-text bench-image clean

$(VENV)/.installed: pyproject.toml client/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt "$(TORCH_CPU)"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]" -e ./client "$(TORCH_CPU)"
	touch $@

install: $(VENV)/.installed

models: install
	$(PY) -m text_service.tiny
	$(PY) -m image_service.tiny

protos: install
	$(PY) protos/generate.py

# After upgrading packages in the venv (and a green `make test`): record their versions.
constraints: install
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.tmp && mv constraints.tmp constraints.txt

# Debian packages the tests use: Chromium for the UI tests (Playwright cannot download browsers
# offline), docker-compose to validate docker-compose.yml without a Docker engine, and PostgreSQL
# for the job-database tests (started from its binaries on a free port).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# Starts the whole stack offline with the tiny demo models; Ctrl-C stops all three services.
demo: models
	SDG_TEXT_MODEL=tiny SDG_IMAGE_MODEL=tiny bash scripts/demo.sh

test: install system-deps
	$(PY) -m pytest -q

# The real models (downloaded on first start; a GPU is recommended).
up:
	docker compose up --build

down:
	docker compose down

bench-text: install
	$(PY) bench/text_bench.py --tiny

bench-image: install
	$(PY) bench/image_bench.py --tiny

clean:
	rm -rf $(VENV) model_cache generated_data .cache

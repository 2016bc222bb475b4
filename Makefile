# d2stream developer entry points. `make run` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURES ?= ../shared/fixtures

.PHONY: setup system-deps test run lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Debian packages the tests use (a real MQTT broker, headless Chromium, Xvfb, systemd-analyze).
system-deps:
	bash .ci/system-deps.sh

test: setup system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest

# The main job: export the demo model from the fixtures and run the daemon with config.yaml.
run: setup
	bash .ci/demo.sh "$(PY)" "$(FIXTURES)"

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) models out var

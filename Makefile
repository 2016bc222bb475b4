# d2stream developer entry points. `make run` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FIXTURES ?= ../shared/fixtures

.PHONY: setup setup-dev system-deps test test-x86 test-aarch64 run lint clean

# What the main job needs: the runtime and the exporter ([export]: onnx).
setup: $(VENV)/.installed-run

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[export]'
	touch $@

# What the tests need on top: the [dev] extra (MQTT, COCO eval, OpenVINO, pytest, ruff) and a
# GUI build of OpenCV outside site-packages for the preview-window test.
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed-run
	$(PY) -m pip install -q -e '.[dev]'
	bash .ci/preview-opencv.sh $(PY)
	touch $@

# Debian packages the tests use (a real MQTT broker, headless Chromium, Xvfb, systemd-analyze).
system-deps:
	bash .ci/system-deps.sh

# Everything: the x86 suite, then the device-side tests on aarch64 under emulation.
test: test-x86 test-aarch64

test-x86: setup-dev system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest

# The device path on aarch64 (qemu-user, an aarch64 Python, PyPI's aarch64 wheels): docs/aarch64.md.
test-aarch64: setup-dev system-deps
	bash .ci/test-aarch64.sh $(PY)

# The main job: export the demo model from the fixtures and run the daemon with config.yaml.
run: setup
	bash .ci/demo.sh "$(PY)" "$(FIXTURES)"

lint: setup-dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) models out var .cache/aarch64

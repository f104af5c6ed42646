# whisperft: make test | make demo | make bench | make docs
# Everything runs from the project's own files: a venv, pinned dependencies, and
# Debian packages (espeak-ng, sox, ffmpeg, chromium for the web app's tests, the Spanish Asterisk prompts for
# the real-voice tests) installed with apt-get when missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# optimum-onnx, the ONNX export's deployment client, in its own venv: it needs transformers < 4.58
OPTIMUM := .venv-optimum
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install sysdeps lint docs test test-fast demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned first so that nothing can pull the multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml requirements/lock.txt requirements/bundled.txt requirements/docs.txt
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements/lock.txt
	$(BIN)/pip install -q --require-hashes --only-binary :all: --no-deps -r requirements/bundled.txt
	$(BIN)/pip install -q --no-deps openai-whisper==20250625
	$(BIN)/pip install -q -r requirements/docs.txt -c requirements/lock.txt  # mkdocs: the lock's pins win
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(OPTIMUM)/.installed: requirements/optimum.txt
	$(PYTHON) -m venv $(OPTIMUM)
	$(OPTIMUM)/bin/pip install -q --upgrade pip
	$(OPTIMUM)/bin/pip install -q torch==2.13.0
	$(OPTIMUM)/bin/pip install -q -r requirements/optimum.txt
	touch $@

install: $(STAMP) $(OPTIMUM)/.installed sysdeps

sysdeps:
	@missing=""; \
	for t in espeak-ng:espeak-ng sox:sox ffmpeg:ffmpeg chromium:chromium; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; \
	done; \
	for p in asterisk-core-sounds-es asterisk-core-sounds-es-wav; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing libsox-fmt-mp3"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing libsox-fmt-mp3 >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check whisperft tests benchmarks demo devkit docs
	$(BIN)/ruff format --check whisperft tests benchmarks demo devkit docs

# The documentation site, into site/: a stale docs/config.md, a broken link or anchor, or a page missing from
# the nav fails. No --quiet: it hides the warnings that --strict counts.
docs: $(STAMP)
	$(BIN)/python -m docs.gen_config --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: install lint docs
	$(BIN)/python -m pytest -q --durations=30

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

demo: install
	$(BIN)/python demo/run.py

bench: install
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(OPTIMUM) runs/demo .pytest_cache site

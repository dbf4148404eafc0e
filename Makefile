# bindcnn: the two entry points are `make serve` (install, train the default model if none, serve it)
# and `make test` (install, run the whole test suite). Everything else is a step of those.
# The default model's name lives in one place (serving/store.py); MODEL=name picks another.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 3000
HOST   ?= 127.0.0.1
MODEL  ?=
NAME   := $(if $(MODEL),--name $(MODEL),)
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install model serve test bench lock clean help

help:
	@echo "make serve   install, train+export the default model if missing, register it, serve it on $(HOST):$(PORT)"
	@echo "make test    install and run the whole test suite"
	@echo "make bench   run the benchmarks (prints markdown tables)"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml (uv)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "bindcnn needs Python 3.11 (TensorFlow 2.21 and the pinned stack); found " + sys.version.split()[0] + ": install python3.11 or run make PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs when pyproject.toml or the lock changes; the lock pins the whole dependency tree.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	$(BIN)/python -m compileall -q serving training  # bytecode now: every command starts ~40 ms sooner where
	# PYTHONDONTWRITEBYTECODE is set (an editable install is not compiled by pip)
	touch $@

install: $(VENV)/.installed

model: install
	$(BIN)/bindcnn train --if-missing $(NAME)

serve: model
	$(BIN)/bindcnn serve --host $(HOST) --port $(PORT) $(if $(MODEL),--model $(MODEL):latest,)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks

lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	    --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache runs

# bindcnn: the two entry points are `make serve` (install, train the default model if none, serve it)
# and `make test` (install, run the whole test suite). Everything else is a step of those.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
MODEL  ?= ctcf
PORT   ?= 3000
HOST   ?= 127.0.0.1
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install model register serve test bench clean help

help:
	@echo "make serve   install, train+export models/$(MODEL) if missing, register it, bentoml serve on $(HOST):$(PORT)"
	@echo "make test    install and run the whole test suite"
	@echo "make bench   run the benchmarks (prints markdown tables)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

models/$(MODEL)/metadata.json: | install
	$(BIN)/python -m training train --name $(MODEL)

model: models/$(MODEL)/metadata.json

register: model
	$(BIN)/python -m training register --model models/$(MODEL)

serve: register
	BINDCNN_MODEL=$(MODEL):latest $(BIN)/bentoml serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache runs

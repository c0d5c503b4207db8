# Two commands for a fresh machine:
#   make demo   sample events in, Marketo writeback out, against the bundled sandbox
#   make test   the test suite (SQLite and the ORM broker unless DATABASE_URL / REDIS_URL are set)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python demo/run_demo.py

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) var

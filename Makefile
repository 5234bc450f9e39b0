# The two commands of the README: `make demo` and `make test`. Both create .venv from the
# project's own files (pyproject.toml, pinned by constraints.txt) when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test browser lint format lock wsdl clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The UI test drives Debian's Chromium through Playwright (no browser download): installed here
# when it is missing and apt can (root or password-less sudo); otherwise that one test is skipped.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); command -v apt-get >/dev/null && \
	  { $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "make: no Chromium and apt could not install it; the UI test will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip && .lock-venv/bin/pip install --quiet -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^aiq-flows' > constraints.txt
	rm -rf .lock-venv

# Re-render the packaged WSDL after changing src/aiq_flows/gateway/schema.py.
wsdl: $(STAMP)
	$(BIN)/python -m aiq_flows.gateway.wsdl

clean:
	rm -rf $(VENV) .demo .cache .pytest_cache .ruff_cache

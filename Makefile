# The two commands of the README: `make demo` and `make test`. Both create .venv from the
# project's own files (pyproject.toml, pinned by constraints.txt) when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test browser node-client lint format lock wsdl clean
NODE_CLIENT := tests/soap_clients/node

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP) browser node-client
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

# The second SOAP stack of the sandbox's tests: Node's soap package, from its lock file, when
# Node.js and npm are on the machine; otherwise that test is skipped.
node-client:
	@if [ -d $(NODE_CLIENT)/node_modules/soap ] && [ $(NODE_CLIENT)/node_modules/.package-lock.json -nt $(NODE_CLIENT)/package-lock.json ]; then :; \
	elif command -v npm >/dev/null; then npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund --silent; \
	else echo "make: no npm; the Node SOAP client test will be skipped"; fi

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
	rm -rf $(VENV) .demo .cache .pytest_cache .ruff_cache $(NODE_CLIENT)/node_modules

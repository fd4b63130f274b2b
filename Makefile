# powerbus — every target does its own set-up from a fresh clone.
#   make demo   virtualenv, install, generate code, then run the whole system
#   make test   the same set-up, then the full test suite
#   make bench  benchmarks, results in benchmarks/results/
#   make lint   ruff + mypy --strict on our code
#   make soak   the money path for thousands of seeds and the heavy sizes (hours)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
GEN := build/generated
CODEGEN := build/.codegen-stamp
PROTOS := $(shell find protos -name '*.proto' | sort)
# Folders too: removing a domain changes its parent folder, not any remaining .proto.
PROTO_DIRS := $(shell find protos -type d | sort)
# Debian packages the tests and benchmarks drive as real peers.
DEB_PACKAGES ?= chromium fonts-wqy-microhei prometheus nginx
PYTEST_ARGS ?=
# Test processes in parallel (pytest-xdist); most tests wait on real processes, so two
# workers halve the suite on a 2-core machine. A module's tests stay on one worker.
TEST_WORKERS ?= 2

.PHONY: all setup generate demo test bench lint gen idl-check system-deps clean soak

all: setup

setup: $(VENV)/.installed $(CODEGEN) $(GEN)/.corba-stamp

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel

# The editable install is a plain path entry to this folder: `powerbus/` holds a link per
# code folder and the generated packages, so a changed or new .proto needs only `make`.
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The same generator setup.py's build step runs (tools/codegen.py), here in place.
$(CODEGEN): $(VENV)/.installed $(PROTOS) $(PROTO_DIRS) tools/codegen.py
	$(BIN)/python tools/codegen.py
	mkdir -p $(dir $@) && touch $@

# The committed IDL and the legacy IDLs must compile with omniidl. Their stubs go in a
# package of their own: a top-level `powerbus` of stubs would shadow ours. The gateway and
# the legacy adapter compile theirs at run time into a cache (adapters/corba/stubs.py).
$(GEN)/.corba-stamp: $(VENV)/.installed $(wildcard idl/*.idl) $(wildcard idl/legacy/*.idl)
	rm -rf $(GEN)/corba && mkdir -p $(GEN)/corba
	$(BIN)/omniidl -bpython -Wbpackage=powerbus_idl_check -C$(GEN)/corba idl/*.idl idl/legacy/*.idl
	touch $@

gen: setup

# Regenerate powerbus.<domain>.v1 after editing protos/.
generate: $(CODEGEN)

idl-check: setup
	$(BIN)/powerbus idl check

demo: setup
	$(BIN)/powerbus demo

test: setup system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Not part of `make test` (which runs 3 seeds at the normal sizes): every seed in
# SOAK_SEEDS (e.g. `make soak SOAK_SEEDS=1-100`) with longer histories, the bank
# end-to-end tests at 3,000 collections and the billing crash and race tests at thousands
# of accounts (nodes/testing/sizes.py). A failing seed prints its replay command.
SOAK_SEEDS ?= 1-2000
soak: setup system-deps
	POWERBUS_SOAK=1 POWERBUS_PAYMENT_SEEDS=$(SOAK_SEEDS) $(BIN)/python -m pytest tests/payment tests/billing_node/test_crash_and_races.py -q $(PYTEST_ARGS)

bench: setup system-deps
	$(BIN)/python -m benchmarks

FOLDERS := bus nodes load_balancer monitoring adapters

# mypy reads the `powerbus/` namespace as Python imports it: folder links + generated code.
lint: setup
	$(BIN)/ruff check $(FOLDERS) tools tests benchmarks setup.py
	$(BIN)/ruff format --check $(FOLDERS) tools tests benchmarks setup.py
	$(BIN)/mypy -p powerbus

# Everything in powerbus/ but the committed folder links is generated.
clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache *.egg-info
	find powerbus -mindepth 1 -maxdepth 1 ! -type l -exec rm -rf {} +

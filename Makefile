# powerbus — every target does its own set-up from a fresh clone.
#   make demo   virtualenv, install, generate code, then run the whole system
#   make test   the same set-up, then the full test suite
#   make bench  benchmarks, results in benchmarks/results/
#   make lint   ruff + mypy --strict on our code

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
GEN := build/generated
PROTOS := $(shell find protos -name '*.proto' | sort)
# Debian packages the tests and benchmarks drive as real peers.
DEB_PACKAGES ?= chromium fonts-wqy-microhei prometheus nginx
PYTEST_ARGS ?=

.PHONY: all setup generate demo test bench lint gen idl-check system-deps clean

all: setup

setup: $(VENV)/.installed $(GEN)/.stamp $(GEN)/.corba-stamp

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

# Code generation needs grpcio-tools before the package itself can be installed, because
# the editable install maps the `powerbus` namespace onto the generated tree.
$(VENV)/.tools: $(BIN)/python
	$(BIN)/pip install -q grpcio-tools mypy-protobuf
	touch $@

$(GEN)/.stamp: $(VENV)/.tools $(PROTOS)
	rm -rf $(GEN).tmp && mkdir -p $(GEN).tmp $(GEN)
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	  --python_out=$(GEN).tmp --mypy_out=$(GEN).tmp \
	  --grpc_python_out=$(GEN).tmp --mypy_grpc_out=$(GEN).tmp \
	  $(PROTOS)
	find $(GEN).tmp/powerbus -type d -exec touch {}/py.typed \;
	# Swap in place only after protoc succeeded, so a failed run leaves the old tree.
	rm -rf $(GEN)/powerbus && mv $(GEN).tmp/powerbus $(GEN)/powerbus && rm -rf $(GEN).tmp
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.tools $(GEN)/.stamp
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The committed IDL and the legacy IDLs must compile with omniidl. Their stubs go in a
# package of their own: a top-level `powerbus` of stubs would shadow ours. The gateway and
# the legacy adapter compile theirs at run time into a cache (adapters/corba/stubs.py).
$(GEN)/.corba-stamp: $(VENV)/.installed $(wildcard idl/*.idl) $(wildcard idl/legacy/*.idl)
	rm -rf $(GEN)/corba && mkdir -p $(GEN)/corba
	$(BIN)/omniidl -bpython -Wbpackage=powerbus_idl_check -C$(GEN)/corba idl/*.idl idl/legacy/*.idl
	touch $@

gen: setup

# Generated code only (no package install): what the Docker build needs.
generate: $(GEN)/.stamp

idl-check: setup
	$(BIN)/powerbus idl check

demo: setup
	$(BIN)/powerbus demo

test: setup system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup system-deps
	$(BIN)/python -m benchmarks

# mypy cannot follow the editable install's import hook, so it reads a symlinked view of
# the `powerbus` namespace: our folders beside the generated packages.
LINT := build/lint/powerbus
FOLDERS := bus nodes load_balancer monitoring adapters

lint: setup
	rm -rf build/lint && mkdir -p $(LINT)
	for f in $(FOLDERS); do ln -s ../../../$$f $(LINT)/$$f; done
	for g in $(GEN)/powerbus/*/; do ln -s ../../../$$g $(LINT)/$$(basename $$g); done
	$(BIN)/ruff check $(FOLDERS) tests benchmarks
	$(BIN)/ruff format --check $(FOLDERS) tests benchmarks
	MYPYPATH=build/lint $(BIN)/mypy $(addprefix -p powerbus.,$(FOLDERS))

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache

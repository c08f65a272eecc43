# pvgen: `make demo` and `make test` do all the set-up (Debian packages, virtual environment, Linux sources).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PVGEN  := $(VENV)/bin/pvgen
PYTEST_ARGS ?=

.PHONY: all setup host venv linux demo test test-long bench clean
all: test

setup: host venv linux

host:
	@bash scripts/setup-host.sh

# The venv is rebuilt when pyproject.toml changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Extract the Linux driver sources from Debian's linux-source-6.1 into a cache outside the repository, and unpack
# Debian's kernel image of the same version there (for `pvgen qemu`; never installed as the host's kernel).
linux: host venv
	@$(PY) -m pvgen.toolchain.linuxsrc
	@$(PY) -m pvgen.qemu.kernel

# The main job: the real Linux ne2k-pci + 8390, original and pvgen-generated (and the other variants), in the monitor,
# with the exit table. `pvgen demo` shows the rewrite itself (Kbuild build, site table, verification).
demo: setup
	@mkdir -p out
	@$(PVGEN) demo
	@$(PVGEN) bench net --json out/bench-net.json --plot out/bench-net.png

test: setup
	@$(PY) -m pytest -q $(PYTEST_ARGS)

# The documented large profile: >= 10 000 hypothesis cases for the differential oracle.
test-long: setup
	@PVGEN_HYPOTHESIS_PROFILE=long $(PY) -m pytest -q tests/differential tests/property $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build out .pytest_cache .hypothesis

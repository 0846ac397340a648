# Real clients for the relay tests (tests/clients/, issue #13): installed by `make deps`.
#   .venv-clients        langchain-openai and litellm as clients, in their own virtualenv: their
#                        pins (openai 2.x) clash with the kit's openai 3.x. The openai SDK tests
#                        use the kit's own .venv.
#   tests/clients/node   the Vercel AI SDK on Node 20 (package.json pins; npm writes a lock file
#                        without download addresses, see the .npmrc there; drop its `funding`
#                        entries too: the repository's lock files carry no URL at all).

# Node for the AI SDK (Debian 12: Node 18, which the pinned `ai` 6 supports; tested on Node 20).
APT_PACKAGES += nodejs npm
APT_BINARIES += node npm

CLIENTS_VENV := .venv-clients
CLIENTS_PACKAGES := langchain-openai==1.7.4 litellm==1.106.2 openai==2.54.0 mcp==2.3.0
# mcp: litellm 1.106.2 imports it on every tool-calling completion without declaring it.

$(STAMPS)/venv-clients: mk/clients.mk | $(STAMPS)
	test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install -q $(CLIENTS_PACKAGES)
	touch $@

$(STAMPS)/node-clients: tests/clients/node/package.json tests/clients/node/package-lock.json tests/clients/node/.npmrc | $(STAMPS)
	cd tests/clients/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(STAMPS)/venv-clients $(STAMPS)/node-clients

# Kubernetes and container part of the kit (infra/k8s, infra/docker, compose files).
#   make k8s-e2e   the kind flow: cluster, image, Envoy Gateway, overlay, e2e suite, teardown
#                  (needs docker, kind, kubectl: not available on the CI machine)

.PHONY: k8s-e2e

# Offline schema validators for the Gateway API, Envoy Gateway and Prometheus Operator objects
# (tests/static/test_k8s.py). npm packages pinned in tests/static/k8s/package.json and locked in
# its package-lock.json (integrity hashes, no download addresses: tests/static/k8s/.npmrc sets
# omit-lockfile-registry-resolved), installed with `npm ci` into an ignored .venv-* folder.
# Node.js and npm come with the Debian-based images this project runs on; the apt fallback covers
# a machine without them. To change a version: edit package.json, then in tests/static/k8s run
# `npm install --package-lock-only`, then drop the lock's `funding` entries (sponsor links: the
# repository's lock files carry no URL at all).
CRD_SCHEMAS := .venv-crd-schemas
CRD_SCHEMA_LOCK := tests/static/k8s/package.json tests/static/k8s/package-lock.json tests/static/k8s/.npmrc

# The stamp lives inside the install folder, so deleting the folder reinstalls it.
$(CRD_SCHEMAS)/.installed: mk/k8s.mk $(CRD_SCHEMA_LOCK)
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)
	mkdir -p $(CRD_SCHEMAS)
	cp $(CRD_SCHEMA_LOCK) $(CRD_SCHEMAS)/
	cd $(CRD_SCHEMAS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(CRD_SCHEMAS)/.installed

k8s-e2e: deps
	bash infra/k8s/kind/run-e2e.sh

# Kubernetes and container part of the kit (infra/k8s, infra/docker, compose files).
#   make k8s-e2e   the kind flow: cluster, image, Envoy Gateway, overlay, e2e suite, teardown
#                  (needs docker, kind, kubectl: not available on the CI machine)

.PHONY: k8s-e2e

# Offline schema validators for the Gateway API, Envoy Gateway and Prometheus Operator objects
# (tests/static/test_k8s.py). npm packages, pinned here; installed into an ignored .venv-* folder
# with no lock file. Node.js and npm come with the Debian-based images this project runs on; the
# apt fallback covers a machine without them.
CRD_SCHEMAS := .venv-crd-schemas
CRD_SCHEMA_PACKAGES := @kubernetes-models/gateway-api@2.0.0 @kubernetes-models/envoy-gateway@2.0.0 \
	@kubernetes-models/prometheus-operator@6.0.0

# The stamp lives inside the install folder, so deleting the folder reinstalls it.
$(CRD_SCHEMAS)/.installed: mk/k8s.mk
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)
	mkdir -p $(CRD_SCHEMAS)
	npm install --prefix $(CRD_SCHEMAS) --no-package-lock --no-save --no-audit --no-fund --loglevel=error $(CRD_SCHEMA_PACKAGES)
	touch $@

deps: $(CRD_SCHEMAS)/.installed

k8s-e2e: deps
	bash infra/k8s/kind/run-e2e.sh

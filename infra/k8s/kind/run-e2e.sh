#!/usr/bin/env bash
# Run the streamkit e2e contract suite through Envoy Gateway on a local kind cluster.
#
# Needs a machine with a container engine: docker, kind and kubectl on PATH, and the
# repository's virtualenv (`make deps`). It does NOT run in `make test` (our CI machine has no
# container engine); tests/static/test_k8s.py checks everything it applies offline.
#
#   bash infra/k8s/kind/run-e2e.sh            # or: make k8s-e2e
#   KEEP_CLUSTER=1 bash infra/k8s/kind/run-e2e.sh   # leave the cluster running afterwards
#
# Steps (each one idempotent, so a failed run can simply be repeated):
#   1. create the kind cluster unless it exists
#   2. build the app image and load it into the kind node
#   3. install a pinned Envoy Gateway (its Helm chart also installs the Gateway API CRDs)
#   4. apply the kind overlay (infra/k8s/overlays/kind)
#   5. wait until the app is rolled out, the Gateway is programmed and the route answers
#   6. run the e2e contract suite against the gateway address (STREAMKIT_E2E_TARGET_URL)
#   7. tear down: delete the cluster if this run created it, else just the app's namespace
set -euo pipefail

# Pinned versions; override from the environment to try others.
CLUSTER=${STREAMKIT_KIND_CLUSTER:-streamkit}
# kind node image = Kubernetes version of the cluster. Ref: https://github.com/kubernetes-sigs/kind/releases
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.36.1}
# Envoy Gateway >= 1.8 is needed for BackendTrafficPolicy streamIdleTimeout.
# Ref: https://gateway.envoyproxy.io/docs/install/install-yaml/
ENVOY_GATEWAY_VERSION=${ENVOY_GATEWAY_VERSION:-v1.9.1}
IMAGE=streamkit:dev
TARGET_URL=${STREAMKIT_KIND_URL:-http://127.0.0.1:8080}
# How long to wait for the route to answer through the gateway (seconds).
READY_DEADLINE=${READY_DEADLINE:-180}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CONTEXT="kind-${CLUSTER}"
CREATED_CLUSTER=0

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "run-e2e.sh: '$tool' is not installed" >&2; exit 2; }
done

teardown() {
  # 7. Tear down, also after a failure (logs first, so a failed run can be read).
  local rc=$?
  if [ "$rc" != 0 ]; then
    kubectl --context "$CONTEXT" -n streamkit get pods,gateway,httproute -o wide || true
    kubectl --context "$CONTEXT" -n streamkit logs deployment/streamkit --tail=100 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    echo "KEEP_CLUSTER=1: cluster ${CLUSTER} left running (kind delete cluster --name ${CLUSTER})"
  elif [ "$CREATED_CLUSTER" = 1 ]; then
    kind delete cluster --name "$CLUSTER"
  else
    kubectl --context "$CONTEXT" delete -k "$ROOT/infra/k8s/overlays/kind/app" --ignore-not-found --wait=false || true
  fi
  exit "$rc"
}
trap teardown EXIT

# 1. Create the cluster unless it already exists.
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" \
    --config "$ROOT/infra/k8s/kind/cluster.yaml" --wait 120s
  CREATED_CLUSTER=1
fi

# 2. Build the app image from the repository root and load it into the node (no registry).
docker build -f "$ROOT/infra/docker/Dockerfile" -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# 3. Install the pinned Envoy Gateway (its release manifest: CRDs + controller) and wait for it.
#    https://gateway.envoyproxy.io/docs/install/install-yaml/
kubectl --context "$CONTEXT" apply --server-side \
  -f "https://github.com/envoyproxy/gateway/releases/download/$ENVOY_GATEWAY_VERSION/install.yaml"
kubectl --context "$CONTEXT" -n envoy-gateway-system wait deployment/envoy-gateway \
  --for=condition=Available --timeout=5m

# 4. Apply the kind overlay (GatewayClass + namespaced app, Gateway, route and policies).
kubectl --context "$CONTEXT" apply -k "$ROOT/infra/k8s/overlays/kind"

# 5. Wait for the app, the Gateway, and an answer through the gateway.
kubectl --context "$CONTEXT" -n streamkit rollout status deployment/streamkit --timeout=5m
kubectl --context "$CONTEXT" -n streamkit wait gateway/streamkit --for=condition=Programmed --timeout=5m
deadline=$((SECONDS + READY_DEADLINE))
until curl -fsS -o /dev/null "$TARGET_URL/healthz"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "run-e2e.sh: $TARGET_URL/healthz did not answer within ${READY_DEADLINE}s" >&2
    exit 1
  fi
  sleep 2
done

# 6. The same e2e contract suite the proxies run locally, pointed at the gateway. The app in the
# cluster runs the overlay's settings (app defaults + EMIT_TIMESTAMPS), so the suite is told its
# ping interval (read from app/settings.py, not repeated here). The suite skips, with a reason, the
# checks that need the app's own records or shortened timings on the test host.
cd "$ROOT"
PING_INTERVAL_SECONDS=$("$ROOT/.venv/bin/python" -c 'from app.settings import Settings; print(Settings.model_fields["ping_interval"].default)')
STREAMKIT_E2E_TARGET_URL="$TARGET_URL" STREAMKIT_E2E_TARGET_NAME="envoy-gateway-kind" \
  STREAMKIT_E2E_PING_INTERVAL="$PING_INTERVAL_SECONDS" \
  "$ROOT/.venv/bin/pytest" tests/e2e/test_remote.py -p no:cacheprovider "$@"

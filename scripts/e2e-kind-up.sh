#!/usr/bin/env bash
# Prepare a kind (default) or k3s cluster for the end-to-end scenarios (tests/e2e):
# build the trainer and operator images locally, load them into the cluster,
# install the chart, and print the variables that make pytest use the cluster.
#
#   scripts/e2e-kind-up.sh                 # kind cluster "rekindle-e2e"
#   E2E_CLUSTER=k3s scripts/e2e-kind-up.sh # the local k3s (sudo for its image store)
#
# Needs docker, helm and kind (or a running k3s). See docs/e2e-on-kind.md.
# It cannot run on the project's CI machines (no Docker engine there).
set -euo pipefail

E2E_CLUSTER=${E2E_CLUSTER:-kind}           # kind | k3s
CLUSTER_NAME=${CLUSTER_NAME:-rekindle-e2e}
TRAINER_IMAGE=${TRAINER_IMAGE:-rekindle-trainer:e2e}
OPERATOR_REPOSITORY=${OPERATOR_REPOSITORY:-rekindle-operator}
OPERATOR_TAG=${OPERATOR_TAG:-e2e}
OPERATOR_NAMESPACE=${OPERATOR_NAMESPACE:-rekindle-system}

cd "$(dirname "$0")/.."
mkdir -p .rekindle
KUBECONFIG_OUT=${KUBECONFIG_OUT:-$PWD/.rekindle/e2e-kubeconfig}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "e2e-kind-up: '$1' not found on PATH; $2" >&2; exit 1; }
}
need docker "install Docker (the images are built locally)"
need helm "install Helm 3 (https://helm.sh/docs/intro/install/)"

echo "==> building $TRAINER_IMAGE (trainer_image/Dockerfile) and $OPERATOR_REPOSITORY:$OPERATOR_TAG (Dockerfile)"
docker build -f trainer_image/Dockerfile -t "$TRAINER_IMAGE" .
docker build -f Dockerfile -t "$OPERATOR_REPOSITORY:$OPERATOR_TAG" .

case "$E2E_CLUSTER" in
  kind)
    need kind "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/)"
    if ! kind get clusters | grep -qx "$CLUSTER_NAME"; then
      echo "==> creating kind cluster $CLUSTER_NAME"
      kind create cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG_OUT" --wait 120s
    else
      kind get kubeconfig --name "$CLUSTER_NAME" >"$KUBECONFIG_OUT"
    fi
    echo "==> loading the images into the kind nodes"
    kind load docker-image --name "$CLUSTER_NAME" "$TRAINER_IMAGE"
    kind load docker-image --name "$CLUSTER_NAME" "$OPERATOR_REPOSITORY:$OPERATOR_TAG"
    ;;
  k3s)
    need k3s "install k3s (https://docs.k3s.io/quick-start) or use E2E_CLUSTER=kind"
    echo "==> importing the images into k3s' containerd"
    docker save "$TRAINER_IMAGE" | sudo k3s ctr images import -
    docker save "$OPERATOR_REPOSITORY:$OPERATOR_TAG" | sudo k3s ctr images import -
    sudo cat /etc/rancher/k3s/k3s.yaml >"$KUBECONFIG_OUT"
    ;;
  *)
    echo "e2e-kind-up: E2E_CLUSTER must be kind or k3s, got '$E2E_CLUSTER'" >&2
    exit 2
    ;;
esac
chmod 600 "$KUBECONFIG_OUT"

echo "==> installing the chart (operator image $OPERATOR_REPOSITORY:$OPERATOR_TAG, never pulled)"
helm upgrade --install rekindle charts/rekindle \
  --kubeconfig "$KUBECONFIG_OUT" \
  --namespace "$OPERATOR_NAMESPACE" --create-namespace \
  --set image.repository="$OPERATOR_REPOSITORY" \
  --set image.tag="$OPERATOR_TAG" \
  --set image.pullPolicy=Never \
  --wait --timeout 5m

cat <<EOF

Cluster ready. Run the scenarios on it with:

  export REKINDLE_E2E_KUBECONFIG=$KUBECONFIG_OUT
  export REKINDLE_E2E_IMAGE=$TRAINER_IMAGE
  export REKINDLE_E2E_OPERATOR_NAMESPACE=$OPERATOR_NAMESPACE
  .venv/bin/python -m pytest tests/e2e -m cluster -v
EOF

#!/usr/bin/env bash
# The main job on the embedded default (`make run`): start `dvp server` on this machine and
# drive it with kubectl the way a DVP user would. Set KEEP=1 to leave the server running.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DATA=${DVP_RUN_DIR:-$PWD/.cache/run}/server
PORT=${DVP_RUN_PORT:-16443}
KUBECTL=$PWD/.cache/kubectl/usr/bin/kubectl
export KUBECONFIG=$DATA/kubeconfig HOME=${DVP_RUN_HOME:-$PWD/.cache/run/home}
mkdir -p "$DATA" "$HOME"

say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

say "starting dvp server (data in $DATA, API on 127.0.0.1:$PORT)"
"$VENV/bin/dvp" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" --no-agent >"$DATA/../server.log" 2>&1 &
SERVER=$!
stop() { [ "${KEEP:-0}" = 1 ] || { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }; }
trap stop EXIT
for _ in $(seq 1 100); do
  grep -q "API ready" "$DATA/../server.log" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DATA/../server.log"; exit 1; }
  sleep 0.1
done
grep -q "API ready" "$DATA/../server.log" || { echo "dvp server did not start"; cat "$DATA/../server.log"; exit 1; }

say "kubectl version"
"$KUBECTL" version --short 2>/dev/null || "$KUBECTL" version
say "the virtualization API is served"
"$KUBECTL" api-resources --api-group=virtualization.deckhouse.io
say "kubectl apply -f examples/01-vmclass-generic.yaml -f examples/03-vi-ubuntu.yaml"
"$KUBECTL" apply -f examples/01-vmclass-generic.yaml -f examples/03-vi-ubuntu.yaml
say "kubectl get vmclass,vi"
"$KUBECTL" get vmclass,vi -o wide
say "done"
echo "kubeconfig: $KUBECONFIG"
echo "try:        KUBECONFIG=$KUBECONFIG $KUBECTL get vmclass,vi"
[ "${KEEP:-0}" = 1 ] && echo "server left running (pid $SERVER); stop it with: kill $SERVER" || true

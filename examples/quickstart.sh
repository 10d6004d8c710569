#!/usr/bin/env bash
# The main job on the embedded default (`make run`): DVP's quick start on this machine.
# Starts libvirt if it is not running, builds the guest test image, serves it over local HTTP,
# starts `dvp server` (API server, DVCR, controllers and the node handler), then as a DVP user
# would: imports the image as a VirtualImage, makes a VirtualDisk from it, boots a
# VirtualMachine with cloud-init user data, and shows `kubectl get vi,vd,vm` and the guest's
# marker line read through `dvp v console`. Set KEEP=1 to leave everything running.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RUN=${DVP_RUN_DIR:-$PWD/.cache/run}
DATA=$RUN/server
PORT=${DVP_RUN_PORT:-16443}
KUBECTL=$PWD/.cache/kubectl/usr/bin/kubectl
DVP="$VENV/bin/dvp"
export KUBECONFIG=$DATA/kubeconfig HOME=${DVP_RUN_HOME:-$RUN/home}
PIDS=()

say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }
# the VM network (bridge + dnsmasq) outlives the node handler by design, like its VMs
network_down() {
  local pidfile=$RUN/agent/network/$BRIDGE/dnsmasq.pid
  [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
}
BRIDGE=dvpbr0
stop() {
  [ "${KEEP:-0}" = 1 ] && return
  if [ -n "${SERVER:-}" ] && kill -0 "$SERVER" 2>/dev/null; then
    # VMs outlive their node handler by design: delete them through the API before stopping it
    "$KUBECTL" delete vm,vd,vi --all --timeout=90s >/dev/null 2>&1 || true
  fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  network_down
  [ -n "${STARTED_LIBVIRT:-}" ] && examples/libvirt-host.sh stop "$RUN/libvirt" || true
}
trap stop EXIT
network_down  # what a KEEP=1 run left
rm -rf "$DATA" "$RUN/agent"  # each run starts from an empty platform (the image cache stays)
mkdir -p "$DATA" "$HOME" "$RUN/image"

say "libvirt"
if examples/libvirt-host.sh start "$RUN/libvirt"; then STARTED_LIBVIRT=1; fi
virsh -q -c qemu:///system version | sed -n 1,3p

say "the guest test image (built once, cached)"
"$VENV/bin/python" -m nodeimage.guest build --out "$RUN/image" | tail -6
IMAGE_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VENV/bin/python" -m http.server "$IMAGE_PORT" --bind 127.0.0.1 --directory "$RUN/image" >"$RUN/http.log" 2>&1 &
PIDS+=($!)
IMAGE_URL=http://127.0.0.1:$IMAGE_PORT/dvp-guest-cloud.qcow2

say "starting dvp server (data in $DATA, API on 127.0.0.1:$PORT, the node handler in-process)"
cat >"$RUN/agent.yaml" <<YAML
state-dir: $RUN/agent
vm-cidr: 10.66.0.0/24
bridge: $BRIDGE
node-ip: 127.0.0.1
console-listen: 127.0.0.1:0
YAML
"$DVP" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" --vm-cidr 10.66.0.0/24 \
  --agent-config "$RUN/agent.yaml" >"$RUN/server.log" 2>&1 &
PIDS+=($!)
SERVER=${PIDS[-1]}
for _ in $(seq 1 300); do
  grep -q "dvp agent: node .* ready" "$RUN/server.log" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { tail -50 "$RUN/server.log"; exit 1; }
  sleep 0.1
done
grep -q "dvp agent: node .* ready" "$RUN/server.log" || { echo "dvp server did not start"; tail -50 "$RUN/server.log"; exit 1; }
"$KUBECTL" get nodes -o wide

say "kubectl apply -f examples/10-quickstart.yaml   (VirtualImage from $IMAGE_URL, VirtualDisk, VirtualMachine)"
sed "s#http://127.0.0.1:8000/dvp-guest-cloud.qcow2#$IMAGE_URL#" examples/10-quickstart.yaml | "$KUBECTL" apply -f -

wait_phase() {  # kind name phase timeout
  local phase="" last=""
  for _ in $(seq 1 $(($4 * 2))); do
    phase=$("$KUBECTL" get "$1" "$2" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [ "$phase" != "$last" ] && { echo "  $1/$2: ${phase:-<none>}"; last=$phase; }
    [ "$phase" = "$3" ] && return 0
    [ "$phase" = Failed ] && { "$KUBECTL" describe "$1" "$2" | tail -20; return 1; }
    sleep 0.5
  done
  echo "$1/$2 did not reach $3 in $4 s"; "$KUBECTL" describe "$1" "$2" | tail -30; return 1
}
say "waiting: image imported, machine running"
wait_phase vi guest Ready 300
wait_phase vm quick Running 300
wait_phase vd guest-root Ready 60

say "kubectl get vi,vd,vm"
"$KUBECTL" get vi,vd,vm -o wide

say "the guest's marker line, through the console (dvp v console quick)"
IP=$("$KUBECTL" get vm quick -o jsonpath='{.status.ipAddress}')
MARKER=""
for _ in $(seq 1 60); do
  MARKER=$(printf '\ncat /run/marker\n' | "$DVP" v console quick --timeout 3 2>/dev/null | tr -d '\r' | grep -m1 '^DVP-GUEST-READY' || true)
  [ -n "$MARKER" ] && break
  sleep 2
done
[ -n "$MARKER" ] || { echo "no marker line on the console"; exit 1; }
echo "$MARKER"
say "the guest answers HTTP on its IP ($IP)"
curl -s --noproxy '*' --max-time 5 "http://$IP/hello.txt"

say "done"
echo "kubeconfig: $KUBECONFIG"
echo "try:        KUBECONFIG=$KUBECONFIG $KUBECTL get vm -o wide; $DVP v console quick"
[ "${KEEP:-0}" = 1 ] && echo "left running (pids ${PIDS[*]}); stop them with: kill ${PIDS[*]}" || true

#!/usr/bin/env bash
# The whole suite as `make test` runs it, in three pytests beside each other. The unit tests need
# only the CPU and start no service. The integration tests spend about half their time waiting
# (emulated guests, sshd, Ansible, timers: one pytest of them left a core idle on average), so
# they run as two streams: the tests that install the single binary (installer, upgrade, several
# hosts; about 24 minutes alone) and the rest (about 20). What they share is safe for overlapping
# runs: locks on libvirt, the guest image, the on-host layout and the bridges; lab hosts, nodes
# and bridges of random names; each stream draws its loopback ports from its own slice. The
# foreground stream's output is shown live, the others' after; the run fails if any fails. The
# single binary is built beside them. Arguments go to every pytest. When an argument names a test
# path, or DVP_TEST_SPLIT=0, it is one plain pytest instead.
set -uo pipefail
cd "$(dirname "$0")/.."
pytest="${VENV:-.venv}/bin/pytest"
split=${DVP_TEST_SPLIT:-1}
for arg in "$@"; do
  path=${arg%%::*}
  if [ -e "$path" ]; then split=0; fi
done
if [ "$split" = 0 ]; then
  exec "$pytest" "$@"
fi

# The stream of the tests that install the single binary: onto lab hosts that share this
# machine's file system (the installer's, the upgrade's) and onto the three-host lab cluster.
lab_paths=(tests/integration/installer tests/integration/upgrade tests/integration/multihost)
ignores=()
for p in "${lab_paths[@]}"; do ignores+=("--ignore=$p"); done

names=()
logs=()
pids=()
# bash starts a background command with SIGINT ignored (no job control without a terminal), and
# an ignored signal stays ignored across exec: the unit tests of Ctrl-C handling need SIGINT as a
# terminal delivers it, so it is set back to its default before pytest starts
in_background() {  # NAME SLICE ARGS...: one pytest beside the others, its output kept in a file
  local name=$1 slice=$2 log
  shift 2
  log=$(mktemp /tmp/dvp-tests.XXXXXX.log)
  DVP_TEST_PORT_SLICE=$slice "${VENV:-.venv}/bin/python" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$pytest" "$@" >"$log" 2>&1 &
  pids+=($!)
  logs+=("$log")
  names+=("$name")
}
in_background "unit tests" 0/3 "$@" tests/unit
in_background "integration tests of the installed binary" 1/3 "$@" "${lab_paths[@]}"
# The single binary (tests/support/dist.py: PyInstaller, about two minutes of one core, niced) is
# built from the start, beside the first tests of every stream, instead of in the set-up of the
# first test that needs it (the installer's, a minute or two into its stream). A test that needs
# it waits on the build's lock; if this build fails, that test's own build reports why.
setsid "${VENV:-.venv}/bin/python" -c 'from tests.support.dist import built_dvp; built_dvp()' >/dev/null 2>&1 &
build_pid=$!
trap 'kill "${pids[@]}" 2>/dev/null; kill -- -"$build_pid" 2>/dev/null; rm -f "${logs[@]}"' EXIT

DVP_TEST_PORT_SLICE=2/3 "$pytest" "$@" "${ignores[@]}" tests/integration tests/e2e
rc=$?
summary="other integration and e2e tests: exit $rc"
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  code=$?
  echo
  echo "======================= ${names[$i]} (run alongside the above) ======================="
  cat "${logs[$i]}"
  summary+="; ${names[$i]}: exit $code"
  if [ "$rc" = 0 ]; then rc=$code; fi
done
echo "$summary"
exit "$rc"

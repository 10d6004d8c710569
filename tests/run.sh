#!/usr/bin/env bash
# The whole suite as `make test` runs it. The unit tests need only the CPU and start no service;
# the integration tests spend most of their time waiting on emulated guests, sshd and Ansible.
# So the unit tests run in a second pytest next to the integration tests, their output kept in a
# file and printed after, and the run fails if either fails; the single binary is built beside
# them. Arguments go to both pytests. When an argument names a test path, or DVP_TEST_SPLIT=0, it
# is one plain pytest instead.
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

unit_log=$(mktemp /tmp/dvp-unit-tests.XXXXXX.log)
# bash starts a background command with SIGINT ignored (no job control without a terminal), and
# an ignored signal stays ignored across exec: the unit tests of Ctrl-C handling need SIGINT as a
# terminal delivers it, so it is set back to its default before pytest starts
"${VENV:-.venv}/bin/python" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$pytest" "$@" tests/unit >"$unit_log" 2>&1 &
unit_pid=$!
# The single binary (tests/support/dist.py: PyInstaller, about two minutes of one core) is first
# needed by the installer tests, several minutes in. It is built from the start, niced, in the
# cores' idle time beside the tests before them, instead of in that test's set-up. A test that
# needs it waits on the build's lock; if this build fails, that test's own build reports why.
setsid "${VENV:-.venv}/bin/python" -c 'from tests.support.dist import built_dvp; built_dvp()' >/dev/null 2>&1 &
build_pid=$!
trap 'kill "$unit_pid" 2>/dev/null; kill -- -"$build_pid" 2>/dev/null; rm -f "$unit_log"' EXIT

"$pytest" "$@" tests/integration tests/e2e
integration_rc=$?
wait "$unit_pid"
unit_rc=$?
echo
echo "======================= unit tests (run alongside the above) ======================="
cat "$unit_log"
echo "integration and e2e: exit $integration_rc; unit: exit $unit_rc"
if [ "$integration_rc" != 0 ]; then exit "$integration_rc"; fi
exit "$unit_rc"

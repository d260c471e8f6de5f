# Helpers shared by the shell tests (source it): counting results and the
# closing "N passed, M failed" line; free_port from scripts/lib.sh.
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
# test_workdir NAME: makes $W (/tmp/ocib-NAME.XXXXXX) and an empty PIDS
# array. At exit every PID in PIDS is stopped (SIGTERM, then waited for;
# an already stopped one is skipped), on_exit runs when the test defines
# it, and $W is removed. Start processes with `... & PIDS+=($!)`.
test_workdir() {
  W=$(mktemp -d "/tmp/ocib-$1.XXXXXX")
  PIDS=()
  trap _test_cleanup EXIT
}
_test_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if declare -F on_exit >/dev/null; then on_exit; fi
  rm -rf "$W" 2>/dev/null || true
}
# free_port comes from the scripts' library.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

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
# free_port comes from the scripts' library.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

#!/usr/bin/env bash
# The store's unit suite (src/store/blob_store_test.cc) with its records in
# PostgreSQL: starts a throwaway server (tests/pg/pg_lib.sh) and runs
# blob_store_pg_test against it (a schema per store).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN_DIR="$(cd "${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}" && pwd)"
source "$HERE/../script_lib.sh"
source "$HERE/pg_lib.sh"
test_workdir store-pg
on_exit() { stop_pg; }
start_pg "$(mktemp -d /tmp/pg.XXXX)"
export OCIB_TEST_PG="$PG_CONNINFO"
cd "$W"
if "$BIN_DIR/blob_store_pg_test" >"$W/out" 2>&1; then
  pass "store unit suite on PostgreSQL ($(grep -o 'test cases:.*' "$W/out" | head -1))"
else
  fail "store unit suite on PostgreSQL"; tail -60 "$W/out"
fi
# The records are rows: one schema per store, every key in ocib_index.
n=$(psql_pg "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ocib_index'")
[ "${n:-0}" -gt 10 ] && pass "the suite's stores are $n schemas with an ocib_index table" ||
  fail "expected a schema per store, found ${n:-none}"
finish

#!/usr/bin/env bash
# The store's unit suite (src/store/blob_store_test.cc) with blob bytes on
# S3: starts a throwaway Ceph cluster with radosgw (tests/s3/ceph_lib.sh)
# and runs blob_store_s3_test against it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN_DIR="$(cd "${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}" && pwd)"
source "$HERE/../script_lib.sh"
source "$HERE/ceph_lib.sh"
test_workdir store-s3
on_exit() { stop_ceph; }
start_ceph "$(mktemp -d /tmp/cs.XXXX)" 2048
export OCIB_TEST_S3_ENDPOINT="$S3_ENDPOINT" OCIB_TEST_S3_ACCESS_KEY="$S3_ACCESS_KEY" OCIB_TEST_S3_SECRET_KEY="$S3_SECRET_KEY"
cd "$W"
if "$BIN_DIR/blob_store_s3_test" >"$W/out" 2>&1; then
  pass "store unit suite on S3 ($(grep -o 'test cases:.*' "$W/out" | head -1))"
else
  fail "store unit suite on S3"; tail -60 "$W/out"
fi
finish

#!/usr/bin/env bash
# The store's disk fills up (issue 10, item 9): on a 48 MiB ext4 image
# loop-mounted by this test, small (inline) and large pushes are refused
# with 500 UNKNOWN naming no path, the server stays up and serves reads,
# it restarts on a full disk, and takes writes again once space is freed.
set -uo pipefail
source "$(dirname "$0")/../script_lib.sh"
BIN="${OCIB_BIN_DIR:?}"
WORK=$(mktemp -d)
MNT="$WORK/mnt"
PID=""
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  mountpoint -q "$MNT" && umount "$MNT"
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$MNT"
truncate -s 48M "$WORK/disk.img"
mkfs.ext4 -q -F -m 0 "$WORK/disk.img" || { fail "mkfs.ext4"; finish; exit 1; }
mount -o loop "$WORK/disk.img" "$MNT" || { fail "mount a loop device (needs root)"; finish; exit 1; }
echo '{"reserved_space_mib": 4}' >"$WORK/c.json"
PORT=$(free_port)
R="http://127.0.0.1:$PORT"

start() {
  "$BIN/ocireg" serve --listen "127.0.0.1:$PORT" --root "$MNT/store" --config "$WORK/c.json" \
    >>"$WORK/access.log" 2>>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 100); do
    curl -sf "$R/v2/" >/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# push_blob SIZE: pushes SIZE random bytes monolithically; prints the
# status code; the body goes to $WORK/body.
push_blob() {
  head -c "$1" /dev/urandom >"$WORK/blob"
  local d
  d="sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)"
  echo "$d" >"$WORK/last_digest"
  curl -s -o "$WORK/body" -w '%{http_code}' -X POST --data-binary @"$WORK/blob" \
    -H 'Content-Type: application/octet-stream' "$R/v2/full/blobs/uploads/?digest=$d"
}

# A filler file that will be deleted to free space later.
dd if=/dev/zero of="$MNT/filler" bs=1M count=8 status=none
start || { fail "ocireg starts"; cat "$WORK/server.log"; finish; exit 1; }
code=$(push_blob 1000)
[ "$code" = 201 ] && pass "a push on a disk with room" || fail "first push answered $code"
FIRST=$(cat "$WORK/last_digest")

# Small blobs live in the database: fill the disk with them.
ok=0 refused=0 other=0
for _ in $(seq 1200); do
  code=$(push_blob 60000)
  case "$code" in
    201) ok=$((ok + 1)) ;;
    500) refused=$((refused + 1)); cp "$WORK/body" "$WORK/refused.json"; break ;;
    *) other=$((other + 1)); break ;;
  esac
done
echo "pushed $ok small blobs before the disk was full"
[ "$refused" = 1 ] && [ "$ok" -gt 10 ] && pass "small pushes are refused with 500 once the disk is full" ||
  fail "small pushes: $ok ok, $refused refused, $other other (last $code)"
jq -e '.errors[0].code == "UNKNOWN"' "$WORK/refused.json" >/dev/null && pass "the refusal is UNKNOWN" ||
  { fail "refusal body"; cat "$WORK/refused.json"; }
if grep -q "$MNT" "$WORK/refused.json" || jq -r '.errors[0].detail' "$WORK/refused.json" | grep -q '/'; then
  fail "the refusal leaks a path"; cat "$WORK/refused.json"
else
  pass "the refusal names no path: $(jq -r '.errors[0].detail' "$WORK/refused.json")"
fi
kill -0 "$PID" 2>/dev/null && pass "the server is still up" || fail "the server died"
code=$(curl -s -o /dev/null -w '%{http_code}' "$R/v2/full/blobs/$FIRST")
[ "$code" = 200 ] && pass "reads go on while the disk is full" || fail "read answered $code"

# A large blob goes to a spool file: refused cleanly too, no path.
code=$(push_blob $((20 << 20)))
[ "$code" = 500 ] && ! grep -q "$MNT" "$WORK/body" && pass "a large push is refused with 500, no path" ||
  { fail "large push answered $code"; cat "$WORK/body"; }
code=$(curl -s -o "$WORK/body" -w '%{http_code}' -X POST "$R/v2/full/blobs/uploads/")
[ "$code" = 500 ] && pass "no upload session starts on a full disk" || fail "upload session answered $code"

# Restart on the full disk (after kill -9): it opens and serves reads.
kill -9 "$PID"; wait "$PID" 2>/dev/null; PID=""
dd if=/dev/zero of="$MNT/filler2" bs=64K status=none 2>/dev/null  # every last block
start && pass "ocireg restarts on a full disk" || { fail "restart on a full disk"; tail -5 "$WORK/server.log"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$R/v2/full/blobs/$FIRST")
[ "$code" = 200 ] && pass "reads work after the restart" || fail "read after restart answered $code"
code=$(push_blob 60000)
[ "$code" = 500 ] && pass "writes are still refused" || fail "write on a full disk answered $code"

# Free space: writes work again, without a restart.
rm -f "$MNT/filler" "$MNT/filler2"
sleep 0.2
code=$(push_blob 60000)
[ "$code" = 201 ] && pass "writes work again once space is freed" || { fail "after freeing space: $code"; cat "$WORK/body"; }
code=$(push_blob $((2 << 20)))
[ "$code" = 201 ] && pass "a large push works again too" || fail "large push after freeing: $code"
grep -q "Assertion\|Aborted" "$WORK/server.log" && fail "RocksDB asserted" || pass "no abort in the server log"
finish

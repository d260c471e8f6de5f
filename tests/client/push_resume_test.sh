#!/usr/bin/env bash
# A push of a large layer cut midway (the registry is killed while chunks
# are arriving, then started again on the same port and store) completes on
# retry, resuming from the offset the registry reports instead of starting
# over; the pushed image then pulls with the same digest.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir resume
B="$BIN/ocibuild --root $W/a"

PORT=$(free_port)
start_reg() {
  "$BIN/ocireg" serve --listen "127.0.0.1:$PORT" --root "$W/store" >>"$W/access.log" 2>>"$W/server.log" &
  REG=$!
  PIDS+=($REG)
  for i in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return; sleep 0.05; done
}
start_reg

# An image with one 384 MiB layer of incompressible bytes (24 chunks).
mkdir -p "$W/ctx"
head -c $((384 << 20)) /dev/urandom > "$W/ctx/big"
printf 'FROM scratch\nCOPY big /big\n' > "$W/ctx/Dockerfile"
$B build -t big:1 "$W/ctx" >/dev/null 2>&1 || fail "build"
rm -f "$W/ctx/big"
R="127.0.0.1:$PORT"
$B tag big:1 "$R/team/big:1"

$B push "$R/team/big:1" >"$W/push.out" 2>&1 &
PUSH=$!
# Kill the registry once a few chunks have arrived.
for i in $(seq 400); do
  [ "$(grep -c '"PATCH /v2/team/big/blobs/uploads/' "$W/access.log" 2>/dev/null)" -ge 3 ] && break
  sleep 0.02
done
kill -9 "$REG"; wait "$REG" 2>/dev/null
sleep 1
start_reg
wait "$PUSH"; rc=$?
[ $rc -eq 0 ] && pass "push completes after the registry was killed midway" || { fail "push exit $rc"; cat "$W/push.out"; }
off=$(grep -o 'resuming upload of sha256:[0-9a-f]* at offset [0-9]*' "$W/push.out" | tail -1 | awk '{print $NF}')
if [ -n "$off" ] && [ "$off" -gt 0 ]; then
  pass "resumed from the registry's offset ($off bytes kept), not from 0"
else
  fail "no resumption from a kept offset"; cat "$W/push.out"
fi
want=$($B inspect "$R/team/big:1" | jq -r .Digest)
if "$BIN/ocibuild" --root "$W/b" pull "$R/team/big:1" >/dev/null 2>&1 &&
   [ "$("$BIN/ocibuild" --root "$W/b" inspect "$R/team/big:1" | jq -r .Digest)" = "$want" ]; then
  pass "the resumed push pulls back with the same digest"
else
  fail "pull after resumed push"
fi

finish

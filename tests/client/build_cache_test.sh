#!/usr/bin/env bash
# The build cache in a registry: ocibuild build --cache-to
# type=registry,ref=... on one store, then --cache-from into an empty store
# (every step a cache hit, the same image), against the real ocireg and
# Debian's Distribution 2.8 on loopback. Also: mode=min against mode=max,
# an import into a store that already has the layers fetches no layer, a
# cache ref that does not exist only warns, and bad cache specs fail.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir bcache

source "$(dirname "$0")/registries.sh"
start_registries

mkdir -p "$W/ctx"
cp /bin/busybox "$W/ctx/"
echo "app v1" > "$W/ctx/app.txt"
cat > "$W/ctx/Dockerfile" <<'DF'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo built-in-tools > /tools.txt

FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY --from=tools /tools.txt /tools.txt
COPY app.txt /app.txt
RUN cat /tools.txt /app.txt > /both.txt
DF
# Layer steps: tools 3, result 5; the first two are the same step in both
# (same key), so mode=max holds 6 and mode=min the result's 5.

for idx in "${!REGS[@]}"; do
  R=${REGS[$idx]}
  name=$([ "$idx" = 0 ] && echo ocireg || echo distribution)
  A="$BIN/ocibuild --root $W/$name-a"
  if $A build -t app:1 --cache-to "type=registry,ref=$R/cache/app:max,mode=max" \
       --cache-to "type=registry,ref=$R/cache/app:min" "$W/ctx" >"$W/out" 2>&1 &&
     grep -q "exported 6 cached steps to $R/cache/app:max" "$W/out" && grep -q "exported 5 cached steps to $R/cache/app:min" "$W/out"; then
    pass "$name: --cache-to pushes the cache (mode=max: 6 distinct steps, mode=min: the result's 5)"
  else
    fail "$name: --cache-to"; tail -5 "$W/out"
  fi
  ! $A images | grep -q "cache/app" && pass "$name: the cache is not left as a local image" || fail "$name: cache image left"
  want=$($A inspect app:1 | jq -r .Digest)
  Bb="$BIN/ocibuild --root $W/$name-b"
  log=${LOGS[$idx]}
  gets() { sleep 0.3; grep -c 'GET /v2/cache/app/blobs/' "$log"; }  # the access log is flushed every 100 ms
  first=$(gets)
  if $Bb build -t app:1 --cache-from "type=registry,ref=$R/cache/app:max" "$W/ctx" >"$W/out" 2>&1 &&
     [ "$(grep -c 'Using cache' "$W/out")" = 8 ] && [ "$($Bb inspect app:1 | jq -r .Digest)" = "$want" ]; then
    pass "$name: --cache-from into an empty store: every step hits, the same image"
  else
    fail "$name: --cache-from: $(grep -c 'Using cache' "$W/out") hits"; tail -5 "$W/out"
  fi
  C="$BIN/ocibuild --root $W/$name-c"
  if $C build -t app:1 --cache-from "$R/cache/app:min" "$W/ctx" >"$W/out" 2>&1 &&
     [ "$(grep -c 'Using cache' "$W/out")" = 7 ] && ! grep -A1 "RUN echo built-in-tools" "$W/out" | grep -q "Using cache" && [ "$($C inspect app:1 | jq -r .Digest)" = "$want" ]; then
    pass "$name: mode=min cache: the result's steps hit (and the tools steps they share), the tools RUN runs"
  else
    fail "$name: mode=min import: $(grep -c 'Using cache' "$W/out") hits"; tail -5 "$W/out"
  fi
  # The first import fetched the 6 layers and the config; importing again
  # into the store that now has every layer fetches the config only.
  before=$(gets)
  [ $((before - first)) -ge 7 ] && pass "$name: the import into an empty store fetched $((before - first)) blobs" ||
    fail "$name: the first import fetched $((before - first)) blobs"
  $Bb build -t app:2 --cache-from "type=registry,ref=$R/cache/app:max" "$W/ctx" >/dev/null 2>&1
  after=$(gets)
  [ $((after - before)) -le 1 ] && pass "$name: an import fetches only what the local store lacks ($((after - before)) blob GETs: the config)" ||
    fail "$name: $((after - before)) blob GETs for a store that had every layer"
  if $BIN/ocibuild --root "$W/$name-d" build -t app:1 --cache-from "type=registry,ref=$R/cache/none:1" "$W/ctx" >"$W/out" 2>&1 &&
     grep -q "Warning.*cache/none:1" "$W/out"; then
    pass "$name: a missing cache only warns"
  else
    fail "$name: missing cache"; tail -3 "$W/out"
  fi
done
X="$BIN/ocibuild --root $W/x"
for bad in "type=local,src=/tmp" "type=registry" "type=registry,ref=a/b:c,mode=all" "type=registry,ref=a/b:c,bogus=1"; do
  if $X build --cache-to "$bad" "$W/ctx" >"$W/out" 2>&1; then fail "bad cache spec $bad accepted"
  else grep -q "cache" "$W/out" && pass "bad cache spec rejected: $bad" || fail "bad cache spec $bad: $(cat "$W/out")"; fi
done
finish

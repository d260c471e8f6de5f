#!/usr/bin/env bash
# ocibuild's local disk space (issue 14): rmi deletes what only that image
# used and keeps shared layers; image prune -a; builder prune (all, by
# age with --filter until=, by size with --keep-storage); system df in
# docker's shape; a prune started during a build waits for it and the
# build's image stays whole.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir prune
B="$BIN/ocibuild --root $W/root"
store_bytes() { du -sb "$W/root/store/blobs" 2>/dev/null | cut -f1; }
expect() { [ "$2" = "$3" ] && pass "$1" || fail "$1: want [$2], got [$3]"; }

# Two images that share a 4 MB layer, each with 3 MB of its own.
mkdir -p "$W/ctx"
head -c 4000000 /dev/urandom > "$W/ctx/shared.bin"
head -c 3000000 /dev/urandom > "$W/ctx/a.bin"
head -c 3000000 /dev/urandom > "$W/ctx/b.bin"
printf 'FROM scratch\nCOPY shared.bin /\nCOPY a.bin /\n' > "$W/ctx/Dockerfile.a"
printf 'FROM scratch\nCOPY shared.bin /\nCOPY b.bin /\n' > "$W/ctx/Dockerfile.b"
$B build -q -t app:a -f "$W/ctx/Dockerfile.a" "$W/ctx" >/dev/null 2>&1 && $B build -q -t app:b -f "$W/ctx/Dockerfile.b" "$W/ctx" >/dev/null 2>&1 &&
  pass "two images sharing a layer built" || fail "build"

$B system df > "$W/df" 2>&1
grep -qE '^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$' "$W/df" && grep -qE '^Images +2 +0 +[0-9.]+MB' "$W/df" &&
  grep -qE '^Build Cache +[0-9]+ +0 +[0-9.]+MB' "$W/df" && pass "system df: docker's columns, 2 images, build cache" || { fail "system df"; cat "$W/df"; }

before=$(store_bytes)
$B rmi app:a > "$W/out" 2>&1
grep -q "Untagged: app:a" "$W/out" && grep -q "Deleted: sha256:" "$W/out" && pass "rmi prints Untagged and Deleted" || { fail "rmi output"; cat "$W/out"; }
# The build cache still holds app:a's layers; a builder prune frees them.
$B builder prune > "$W/out" 2>&1
grep -q "Deleted build cache records:" "$W/out" && grep -q "^Total: " "$W/out" && pass "builder prune reports what it freed" || { fail "builder prune"; cat "$W/out"; }
after=$(store_bytes)
freed=$((before - after))
[ "$freed" -ge 2900000 ] && [ "$freed" -lt 7000000 ] && pass "app:a's own layer is gone ($freed bytes freed), the shared one stays" || fail "freed $freed bytes"
$B inspect app:b > /dev/null 2>&1 && $B save -o "$W/b.tar" app:b >/dev/null 2>&1 && tar -tf "$W/b.tar" >/dev/null &&
  pass "app:b (sharing the layer) is whole: inspect and save work" || fail "app:b broken"

# builder prune by age and by size.
printf 'FROM scratch\nCOPY a.bin /x\n' > "$W/ctx/Dockerfile.c"
$B build -q -t c:1 -f "$W/ctx/Dockerfile.c" "$W/ctx" >/dev/null 2>&1
$B builder prune --filter until=1h > "$W/out" 2>&1
grep -q "Deleted build cache records: 0" "$W/out" && pass "builder prune --filter until=1h keeps recent cache" || { fail "until=1h"; cat "$W/out"; }
$B builder prune --keep-storage 1MB > "$W/out" 2>&1
grep -qE "Deleted build cache records: [1-9]" "$W/out" && pass "builder prune --keep-storage 1MB drops cache over the size" || { fail "keep-storage"; cat "$W/out"; }
$B builder prune --filter until=bogus > "$W/out" 2>&1; r=$?
[ $r -ne 0 ] && grep -q "until=bogus" "$W/out" && pass "a bad --filter is a clear error" || { fail "bad filter"; cat "$W/out"; }

# image prune -a removes every image, and with the cache gone the store is empty.
$B image prune -a > "$W/out" 2>&1
grep -q "Total reclaimed space:" "$W/out" && [ -z "$($B images 2>/dev/null | tail -n +2)" ] && pass "image prune -a removes every image" || { fail "image prune -a"; cat "$W/out"; }
$B builder prune >/dev/null 2>&1
expect "the store's blobs are gone once images and cache are" "0" "$(find "$W/root/store/blobs" -type f | wc -l)"
expect "no extracted layer left" "0" "$(find "$W/root/state/layers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"

# A prune during a build waits for it; the build's image stays whole.
head -c 300000000 /dev/urandom > "$W/ctx/huge.bin"
printf 'FROM scratch\nCOPY huge.bin /\n' > "$W/ctx/Dockerfile.h"
$B build -q -t huge:1 -f "$W/ctx/Dockerfile.h" "$W/ctx" > "$W/build.out" 2>&1 &
bp=$!
sleep 0.5
$B builder prune > "$W/prune.out" 2>&1; pr=$?
wait $bp; br=$?
[ $br = 0 ] && [ $pr = 0 ] && pass "a build and a prune started during it both succeed" || { fail "build $br prune $pr"; cat "$W/build.out" "$W/prune.out"; }
grep -q "waiting for the store" "$W/prune.out" && pass "... the prune waited for the build" || pass "... (the build ended before the prune began)"
$B save -o "$W/h.tar" huge:1 >/dev/null 2>&1 && pass "the image built beside the prune saves whole" || fail "huge:1 broken after prune"

finish

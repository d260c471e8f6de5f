#!/usr/bin/env bash
# Multi-platform images through ocibuild, against the real ocireg and
# Debian's Distribution 2.8: pull --all-platforms keeps the index and every
# platform; push sends every platform manifest and then the index, byte for
# byte (same digest); pulls by platform pick the right manifest; tag and
# rmi carry the platforms along.
source "$(dirname "$0")/../interop/lib.sh"
set +e
BIN="$BIN_DIR"
S="skopeo --insecure-policy"

start_registry src
REGS=("$REG_src")
NAMES=(ocireg)
start_registry dst
TARGETS=("$REG_dst")
if command -v docker-registry >/dev/null; then
  DP=$(free_port)
  printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s/dist\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$WORK" "$DP" > "$WORK/dist.yml"
  docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do curl -sf "http://127.0.0.1:$DP/v2/" >/dev/null && break; sleep 0.05; done
  TARGETS+=("127.0.0.1:$DP")
fi

make_multiarch_layout "$WORK/multi" v1 mp
$S copy --all --dest-tls-verify=false "oci:$WORK/multi:v1" "docker://$REG_src/team/multi:1" >/dev/null 2>&1 || fail "seed with skopeo"
INDEX=sha256:$($S inspect --tls-verify=false --raw "docker://$REG_src/team/multi:1" | sha256sum | cut -d' ' -f1)
ARM=$($S inspect --tls-verify=false --raw "docker://$REG_src/team/multi:1" | jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest')
AMD=$($S inspect --tls-verify=false --raw "docker://$REG_src/team/multi:1" | jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest')

B="$BIN/ocibuild --root $WORK/a"
if $B pull --all-platforms "$REG_src/team/multi:1" >"$WORK/out" 2>&1 && grep -q "Digest: $INDEX" "$WORK/out"; then
  pass "pull --all-platforms keeps the index (digest $INDEX)"
else
  fail "pull --all-platforms"; cat "$WORK/out"
fi
[ "$(grep -c 'Pull complete' "$WORK/out")" -eq 4 ] && pass "both platforms' layers and configs fetched (4 blobs)" ||
  { fail "blob count"; cat "$WORK/out"; }
$B inspect "$REG_src/team/multi:1" >"$WORK/inspect" 2>&1 && grep -q '"amd64"' "$WORK/inspect" &&
  pass "inspect of the index shows the host platform (amd64)" || { fail "inspect index"; cat "$WORK/inspect"; }
$B images | grep -q "$REG_src/team/multi" && pass "images lists the index tag" || fail "images list"

for idx in "${!TARGETS[@]}"; do
  R=${TARGETS[$idx]}
  name=$([ "$idx" = 0 ] && echo ocireg || echo distribution)
  $B tag "$REG_src/team/multi:1" "$R/team/multi:1" || fail "$name: tag of an index"
  if $B push "$R/team/multi:1" >"$WORK/out" 2>&1 && grep -q "1: digest: $INDEX" "$WORK/out"; then
    pass "$name: push of the index"
  else
    fail "$name: push of the index"; cat "$WORK/out"
  fi
  remote=sha256:$($S inspect --tls-verify=false --raw "docker://$R/team/multi:1" | sha256sum | cut -d' ' -f1)
  [ "$remote" = "$INDEX" ] && pass "$name: the registry holds the same index bytes" || fail "$name: index digest $remote != $INDEX"
  $S inspect --tls-verify=false --override-arch arm64 "docker://$R/team/multi:1" >"$WORK/arm.json" 2>&1 &&
    [ "$(jq -r .Architecture "$WORK/arm.json")" = arm64 ] && pass "$name: skopeo reads the arm64 image through the index" ||
    { fail "$name: arm64 through index"; cat "$WORK/arm.json"; }
  if $B push "$R/team/multi:1" >"$WORK/out" 2>&1 && ! grep -q Pushed "$WORK/out" && [ "$(grep -c 'Layer already exists' "$WORK/out")" -eq 4 ]; then
    pass "$name: push again sends no blob"
  else
    fail "$name: second push"; cat "$WORK/out"
  fi
  C="$BIN/ocibuild --root $WORK/c$idx"
  if $C pull --platform linux/arm64 "$R/team/multi:1" >"$WORK/out" 2>&1 && grep -q "Digest: $ARM" "$WORK/out"; then
    pass "$name: pull --platform linux/arm64 into an empty store gets the arm64 manifest"
  else
    fail "$name: pull arm64"; cat "$WORK/out"
  fi
  D="$BIN/ocibuild --root $WORK/d$idx"
  if $D pull "$R/team/multi:1" >"$WORK/out" 2>&1 && grep -q "Digest: $AMD" "$WORK/out"; then
    pass "$name: pull without --platform gets the host's (amd64) manifest"
  else
    fail "$name: pull default platform"; cat "$WORK/out"
  fi
  if $D pull --platform linux/s390x "$R/team/multi:1" >"$WORK/out" 2>&1; then fail "$name: pull of a missing platform succeeded"; else
    grep -q "no image for linux/s390x" "$WORK/out" && pass "$name: a missing platform is a one-line error" || { fail "$name: message"; cat "$WORK/out"; }
  fi
  E="$BIN/ocibuild --root $WORK/e$idx"
  if $E pull --all-platforms "$R/team/multi:1" >"$WORK/out" 2>&1 && grep -q "Digest: $INDEX" "$WORK/out"; then
    pass "$name: pull --all-platforms into an empty store gets the same index"
  else
    fail "$name: pull --all-platforms"; cat "$WORK/out"
  fi
done

# A Docker manifest list goes through unchanged too.
$S copy --all --format v2s2 --dest-tls-verify=false "oci:$WORK/multi:v1" "docker://$REG_src/team/list:1" >/dev/null 2>&1
LIST=sha256:$($S inspect --tls-verify=false --raw "docker://$REG_src/team/list:1" | sha256sum | cut -d' ' -f1)
$B pull -a "$REG_src/team/list:1" >/dev/null 2>&1 && $B tag "$REG_src/team/list:1" "$REG_dst/team/list:1" &&
  $B push "$REG_dst/team/list:1" >"$WORK/out" 2>&1 && grep -q "1: digest: $LIST" "$WORK/out" &&
  pass "a Docker manifest list round-trips with its digest" || { fail "manifest list round trip"; cat "$WORK/out"; }

# rmi of the index tag removes it with its platform manifests.
$B rmi "$REG_src/team/multi:1" >/dev/null 2>&1
if $B inspect "$REG_src/team/multi:1" >/dev/null 2>&1; then fail "rmi left the index"; else pass "rmi removes the index tag"; fi
$B images | grep -q "$REG_src/team/multi " && fail "images still lists the removed index" || pass "images no longer lists it"

finish

#!/usr/bin/env bash
# ocibuild push and pull against the real ocireg and Debian's Distribution
# 2.8 on loopback: push, push again (no blob bytes sent: every layer
# "already exists"), push an image sharing the base (only new layers go),
# pull into an empty store (same digest, runs), clear errors for bad input.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir pushpull
B="$BIN/ocibuild --root $W/a"
# Bytes over loopback, to count what a push sends (tests run one at a time).
lo_bytes() { awk '$1 == "lo:" {print $2}' /proc/net/dev; }
B2="$BIN/ocibuild --root $W/b"

# Registries: ocireg, and Distribution 2.8 when installed.
source "$(dirname "$0")/registries.sh"
DIST_EXTRA_YAML=$'  delete:\n    enabled: true\n' start_registries

# Images: a busybox base and an app on top of it.
mkdir -p "$W/base" "$W/app"
cp /bin/busybox "$W/base/"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n' > "$W/base/Dockerfile"
echo "app data" > "$W/app/data"
printf 'FROM base:1\nCOPY data /data\nCMD ["cat", "/data"]\n' > "$W/app/Dockerfile"
$B build -t base:1 "$W/base" >/dev/null 2>&1 && $B build -t app:1 "$W/app" >/dev/null 2>&1 || fail "builds"

for idx in "${!REGS[@]}"; do
  R=${REGS[$idx]}
  name=$([ "$idx" = 0 ] && echo ocireg || echo distribution)
  $B tag base:1 "$R/team/base:1"
  $B tag app:1 "$R/team/app:1"
  if $B push "$R/team/base:1" >"$W/out" 2>&1 && grep -q "Pushed" "$W/out" && grep -q "1: digest: sha256:" "$W/out"; then
    pass "$name: push"
  else
    fail "$name: push"; cat "$W/out"
  fi
  b0=$(lo_bytes)
  if $B push "$R/team/base:1" >"$W/out" 2>&1 && ! grep -q Pushed "$W/out" && [ "$(grep -c 'Layer already exists' "$W/out")" -eq 3 ]; then
    pass "$name: push again sends no blob (3 layers and config already exist)"
  else
    fail "$name: second push"; cat "$W/out"
  fi
  sent=$(( $(lo_bytes) - b0 ))
  # The base holds busybox (about 1 MB compressed); requests and answers
  # without blob bytes are a few kB.
  [ "$sent" -lt 65536 ] && pass "$name: second push moved $sent bytes over loopback (no blob bytes)" ||
    fail "$name: second push moved $sent bytes"
  b0=$(lo_bytes)
  if $B push "$R/team/app:1" >"$W/out" 2>&1 && [ "$(grep -c Pushed "$W/out")" -eq 2 ] && [ "$(grep -c 'Mounted from team/base' "$W/out")" -eq 2 ]; then
    pass "$name: an image sharing the base mounts the base layers and sends only its new layer and config"
  else
    fail "$name: shared-base push"; cat "$W/out"
  fi
  sent=$(( $(lo_bytes) - b0 ))
  [ "$sent" -lt 65536 ] && pass "$name: the shared-base push moved $sent bytes (the base's 1 MB not sent again)" ||
    fail "$name: shared-base push moved $sent bytes"
  if skopeo inspect --tls-verify=false "docker://$R/team/app:1" >"$W/out" 2>&1 && jq -e '.Layers | length == 3' "$W/out" >/dev/null; then
    pass "$name: skopeo reads the pushed image"
  else
    fail "$name: skopeo inspect"; cat "$W/out"
  fi
  want=$($B inspect "$R/team/app:1" | jq -r .Digest)
  if $B2 pull "$R/team/app:1" >"$W/out" 2>&1; then pass "$name: pull into an empty store"; else fail "$name: pull"; cat "$W/out"; fi
  got=$($B2 inspect "$R/team/app:1" 2>/dev/null | jq -r .Digest)
  [ "$got" = "$want" ] && pass "$name: pulled image has the pushed digest" || fail "$name: digest $got != $want"
  if $B2 run "$R/team/app:1" >"$W/out" 2>&1 && grep -qx "app data" "$W/out"; then pass "$name: pulled image runs"; else fail "$name: run pulled"; cat "$W/out"; fi
  if $B2 pull "$R/team/app:1" >"$W/out" 2>&1 && [ "$(grep -c 'Already exists' "$W/out")" -eq 4 ]; then
    pass "$name: pull again fetches nothing"
  else
    fail "$name: second pull"; cat "$W/out"
  fi
  if $B2 pull "$R/team/app@$want" >/dev/null 2>&1; then pass "$name: pull by digest"; else fail "$name: pull by digest"; fi
  # FROM pulls a base that is not local.
  mkdir -p "$W/from$idx"
  printf 'FROM %s/team/base:1\nRUN echo built-on-pulled-base\n' "$R" > "$W/from$idx/Dockerfile"
  if "$BIN/ocibuild" --root "$W/c$idx" build -t onbase:1 "$W/from$idx" >"$W/out" 2>&1 && grep -q built-on-pulled-base "$W/out"; then
    pass "$name: FROM pulls a base image that is not local"
  else
    fail "$name: FROM pull"; cat "$W/out"
  fi
  if $B2 pull "$R/team/nothere:1" >"$W/out" 2>&1; then fail "$name: pull of a missing image succeeded"; else
    grep -q "ocibuild: manifest team/nothere:1" "$W/out" && pass "$name: missing image is a one-line error" || { fail "$name: error text"; cat "$W/out"; }
  fi
done

# A registry that serves bytes not matching their digest: corrupt a layer
# file in ocireg's own store. The pull must fail and store nothing.
R=${REGS[0]}
layer=$($B inspect "$R/team/app:1" | jq -r '.Manifest.layers[0].digest')  # busybox: big enough for a file
h=${layer#sha256:}
f="$W/ocireg/blobs/sha256/${h:0:2}/$h"
if [ -f "$f" ]; then
  size=$(stat -c%s "$f")
  head -c "$size" /dev/zero > "$f"
  if "$BIN/ocibuild" --root "$W/corrupt" pull "$R/team/app:1" >"$W/out" 2>&1; then fail "pull of corrupted bytes succeeded"; else
    grep -q "hashes to" "$W/out" && pass "corrupted blob from the registry: digest mismatch, one-line error" || { fail "corruption message"; cat "$W/out"; }
  fi
  "$BIN/ocibuild" --root "$W/corrupt" images | grep -q "team/app" && fail "corrupted image was tagged" || pass "nothing tagged after a bad blob"
  n=$(find "$W/corrupt/store/blobs" -type f -name "$h" 2>/dev/null | wc -l)
  [ "$n" -eq 0 ] && pass "the bad blob was not stored" || fail "bad blob stored"
else
  fail "could not find the layer file to corrupt"
fi

if $B push app:1 >"$W/out" 2>&1; then fail "push without a registry succeeded"; else
  grep -q "names no registry" "$W/out" && pass "push without a registry explains itself" || fail "no-registry message"
fi
# A name without a host goes to $OCIBUILD_REGISTRY, else the config's
# "default-registry".
$B tag app:1 team/plainname:1
if OCIBUILD_REGISTRY="$R" $B push team/plainname:1 >"$W/out" 2>&1 && grep -q "\[$R/team/plainname\]" "$W/out"; then
  pass "\$OCIBUILD_REGISTRY is the registry for names without a host"
else
  fail "OCIBUILD_REGISTRY push"; cat "$W/out"
fi
mkdir -p "$W/xdg/ocibuild"
printf '{"default-registry": "%s"}\n' "$R" > "$W/xdg/ocibuild/config.json"
if XDG_CONFIG_HOME="$W/xdg" $B2 pull team/plainname:1 >"$W/out" 2>&1 && XDG_CONFIG_HOME="$W/xdg" $B2 inspect team/plainname:1 >/dev/null 2>&1; then
  pass "default-registry in the client config"
else
  fail "default-registry pull"; cat "$W/out"
fi
if $B push 127.0.0.1:1/team/app:1 >"$W/out" 2>&1; then fail "push to a closed port succeeded"; else
  grep -q "no local image" "$W/out" && pass "push of an image not in the store fails clearly" || fail "push unknown image"
fi
$B tag app:1 127.0.0.1:1/team/app:1
if $B push 127.0.0.1:1/team/app:1 >"$W/out" 2>&1; then fail "push to a closed port succeeded"; else
  grep -q "cannot reach the registry" "$W/out" && pass "unreachable registry is a one-line error" || { fail "unreachable message"; cat "$W/out"; }
fi
$B tag app:1 nosuchhost.invalid:5000/team/app:1
if timeout 120 $B push nosuchhost.invalid:5000/team/app:1 >"$W/out" 2>&1; then fail "push to an unknown host succeeded"; else
  grep -q "cannot reach the registry" "$W/out" && [ "$(grep -c '^ocibuild:' "$W/out")" -eq 1 ] &&
    pass "unknown host is a one-line error" || { fail "unknown host message"; cat "$W/out"; }
fi
if timeout 120 $B pull nosuchhost.invalid:5000/team/app:1 >"$W/out" 2>&1; then fail "pull from an unknown host succeeded"; else
  grep -q "cannot reach the registry" "$W/out" && pass "pull from an unknown host is a one-line error" || { fail "unknown host pull"; cat "$W/out"; }
fi

finish

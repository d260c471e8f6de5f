#!/usr/bin/env bash
# Differential test against the reference builder: every case under
# tests/parity/cases/ is built by ocibuild and by BuildKit (Debian's
# docker.io 20.10: /usr/bin/docker with DOCKER_BUILDKIT=1 against a
# private dockerd started and stopped here by PID), and the two images are
# compared with imgfs.py: image config and flattened root filesystem.
#
# A case is a directory: its Dockerfile and build context, and optionally
#   flags             extra build flags, one line (both builders get them;
#                     @CTX@ stands for the prepared context's path)
#   setup.sh          run in a scratch copy of the context before building
#                     (modes, owners and hardlinks git cannot hold)
#   Dockerfile.reference  what BuildKit builds instead (features BuildKit
#                     0.8 lacks offline, such as heredocs: a hand-written
#                     equivalent)
#   network           the case reaches the Debian archive: its reference
#                     result is reused for one day only
# Bases: parity/busybox:1 (busybox, /etc/passwd with root and app:1000)
# made here, and debian:minbase (debootstrap, cached by
# tests/build/debian_base.sh), imported into both builders.
#
# BuildKit's results are cached under $OCIB_PARITY_CACHE (default
# /var/cache/ocibuild-test/parity) by a hash of the case, its prepared
# context and the bases, so dockerd starts only when a case changed.
# Arguments: case names to run (default: all).
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../script_lib.sh"
source "$HERE/../build/debian_base.sh"
CACHE="${OCIB_PARITY_CACHE:-/var/cache/ocibuild-test/parity}"
test_workdir parity
DOCKERD=""
on_exit() { umount "$W"/docker/exec/netns/* 2>/dev/null || true; }  # dockerd leaves its netns mounted
mkdir -p "$CACHE"
B="$BIN/ocibuild --root $W/ocibuild"
REFDOCKER=/usr/bin/docker   # Debian's docker.io CLI, 20.10, whose build speaks BuildKit 0.8

# The busybox base, byte for byte the same on every run.
mkdir -p "$W/bb/bin" "$W/bb/etc" "$W/bb/tmp" "$W/bb/root" "$W/bb/home/app"
cp /bin/busybox "$W/bb/bin/busybox"
for a in $("$W/bb/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$W/bb/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\ndev:x:1001:50:dev:/home/dev:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$W/bb/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n' > "$W/bb/etc/group"
chmod 1777 "$W/bb/tmp"; chmod 700 "$W/bb/root"; chown 1000:1000 "$W/bb/home/app"
tar --sort=name --mtime=@0 --numeric-owner -C "$W/bb" -cf "$W/busybox.tar" .
ensure_debian_base "$W" >/dev/null 2>&1 || true
BASEKEY=$(sha256sum "$W/busybox.tar" | cut -c1-64)
[ -s "$DEBIAN_BASE" ] && BASEKEY="$BASEKEY $(sha256sum "$DEBIAN_BASE" | cut -c1-64)"

$B import "$W/busybox.tar" parity/busybox:1 >/dev/null || { fail "ocibuild import busybox"; finish; exit 1; }
[ -s "$DEBIAN_BASE" ] && $B import "$DEBIAN_BASE" debian:minbase >/dev/null

start_dockerd() {
  [ -n "$DOCKERD" ] && return 0
  local D="$W/docker"; mkdir -p "$D"
  dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/sock" --pidfile "$D/pid" \
    --iptables=false --ip6tables=false --bridge=none --storage-driver overlay2 >"$D/log" 2>&1 &
  DOCKERD=$!
  PIDS+=("$DOCKERD")
  DK="$REFDOCKER -H unix://$D/sock"
  local i
  for i in $(seq 150); do $DK info >/dev/null 2>&1 && break; sleep 0.2; done
  $DK import "$W/busybox.tar" parity/busybox:1 >/dev/null
  [ -s "$DEBIAN_BASE" ] && $DK import "$DEBIAN_BASE" debian:minbase >/dev/null
  return 0
}

cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=($(ls "$HERE/cases"))
for name in "${cases[@]}"; do
  src="$HERE/cases/$name"
  [ -d "$src" ] || { fail "$name: no such case"; continue; }
  if [ -f "$src/network" ] && [ ! -s "$DEBIAN_BASE" ]; then
    fail "$name: the Debian base could not be made"; continue
  fi
  ctx="$W/ctx/$name"; mkdir -p "$ctx"
  cp -a "$src/." "$ctx/"
  rm -f "$ctx/flags" "$ctx/setup.sh" "$ctx/network" "$ctx/Dockerfile.reference"
  [ -f "$src/setup.sh" ] && (cd "$ctx" && bash "$src/setup.sh")
  flags=""; [ -f "$src/flags" ] && flags=$(sed "s|@CTX@|$ctx|g" "$src/flags")
  refdf="$ctx/Dockerfile"
  if [ -f "$src/Dockerfile.reference" ]; then cp "$src/Dockerfile.reference" "$W/$name.refdf"; refdf="$W/$name.refdf"; fi
  key=$( { echo "$BASEKEY"; [ -f "$src/flags" ] && cat "$src/flags"; cat "$refdf";
           tar --sort=name --mtime=@0 --numeric-owner -C "$ctx" -cf - . | sha256sum;
           [ -f "$src/network" ] && date -u +%F; $REFDOCKER --version; } | sha256sum | cut -c1-32)
  ref="$CACHE/$name.$key.json"
  if [ ! -s "$ref" ]; then
    start_dockerd
    if DOCKER_BUILDKIT=1 $DK build --network host -f "$refdf" $flags -t "parity/$name:1" "$ctx" >"$W/$name.ref.log" 2>&1 &&
       $DK save -o "$W/$name.ref.tar" "parity/$name:1" &&
       python3 "$HERE/imgfs.py" summarize "$W/$name.ref.tar" "$ref.tmp"; then
      rm -f "$CACHE/$name".*.json; mv "$ref.tmp" "$ref"; rm -f "$W/$name.ref.tar"
    else
      fail "$name: BuildKit could not build it"; tail -15 "$W/$name.ref.log"; continue
    fi
  fi
  if ! $B build -t "parity/$name:1" $flags "$ctx" >"$W/$name.log" 2>&1; then
    fail "$name: ocibuild build failed"; tail -15 "$W/$name.log"; continue
  fi
  $B save -o "$W/$name.tar" "parity/$name:1" &&
    python3 "$HERE/imgfs.py" summarize "$W/$name.tar" "$W/$name.json" || { fail "$name: save"; continue; }
  if python3 "$HERE/imgfs.py" compare "$W/$name.json" "$ref" "$HERE/ignore" >"$W/$name.diff"; then
    pass "$name: same config and root filesystem as BuildKit"
  else
    fail "$name: differs from BuildKit"; head -40 "$W/$name.diff"
  fi
  rm -f "$W/$name.tar"
done
finish

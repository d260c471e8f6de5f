# Helpers for the interop tests: start/stop the real ocireg, build small
# OCI image layouts from files made on the spot (no internet), and count
# results. Source it from a test script.
set -euo pipefail

BIN_DIR="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
WORK="$(mktemp -d /tmp/ocib-interop.XXXXXX)"
source "$(dirname "${BASH_SOURCE[0]}")/../script_lib.sh"
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT

check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@" >"$WORK/last.out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/    /' "$WORK/last.out" | tail -20; fi
}
check_fails() {  # the command must fail
  local what="$1"; shift
  if "$@" >"$WORK/last.out" 2>&1; then fail "$what (succeeded)"; sed 's/^/    /' "$WORK/last.out" | tail -5; else pass "$what"; fi
}

# start_registry NAME [ocireg args...]: sets REG_<NAME> (host:port) and
# REGLOG_<NAME>. The store goes under $WORK/NAME.
start_registry() {
  local name="$1"; shift
  local dir="$WORK/$name"
  mkdir -p "$dir"
  rm -f "$dir/port"
  "$BIN_DIR/ocireg" serve --listen 127.0.0.1:0 --root "$dir/store" --port-file "$dir/port" "$@" \
    >"$dir/access.log" 2>"$dir/server.log" &
  local pid=$!
  PIDS+=("$pid")
  eval "PID_$name=$pid"
  local i
  for i in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
  if [ ! -s "$dir/port" ]; then
    fail "ocireg $name did not start"
    sed 's/^/    /' "$dir/server.log" | tail -5
    return 1
  fi
  local port; port=$(cat "$dir/port")
  for i in $(seq 200); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
  eval "REG_$name=127.0.0.1:$port"
  eval "REGLOG_$name=$dir/access.log"
}

# start_containerd NAMESPACE: a private containerd (own root, state and
# socket under $WORK/containerd, CRI off); sets CTRD (its PID, also in
# PIDS) and CTR (ctr on its socket, in NAMESPACE).
start_containerd() {
  local c="$WORK/containerd"
  mkdir -p "$c"
  cat > "$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = "$c/debug.sock"
TOML
  containerd --config "$c/config.toml" >"$c/containerd.log" 2>&1 &
  CTRD=$!
  PIDS+=("$CTRD")
  CTR="ctr -a $c/containerd.sock -n $1"
  local i
  for i in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done
}

stop_pid() {  # SIGTERM a PID we started and wait for it
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# add_blob LAYOUT FILE -> prints the digest hex, copies FILE into the layout
add_blob() {
  local h; h=$(sha "$2")
  mkdir -p "$1/blobs/sha256"
  cp "$2" "$1/blobs/sha256/$h"
  echo "$h"
}

# make_image LAYOUT ARCH SEED -> prints "digest size" of an image manifest
# whose one layer holds a static busybox (when installed) and a file with
# SEED, so different seeds give different images.
make_image() {
  local layout="$1" arch="$2" seed="$3"
  local t="$WORK/build.$$.$RANDOM"
  mkdir -p "$t/rootfs/bin" "$t/rootfs/etc"
  if [ -x /bin/busybox ]; then
    cp /bin/busybox "$t/rootfs/bin/busybox"
    local app
    for app in sh echo cat ls true; do ln -s busybox "$t/rootfs/bin/$app"; done
  fi
  echo "$seed" > "$t/rootfs/etc/seed"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$t/rootfs" -cf "$t/layer.tar" .
  gzip -n -c "$t/layer.tar" > "$t/layer.tgz"
  local diff; diff=$(sha "$t/layer.tar")
  local lh; lh=$(add_blob "$layout" "$t/layer.tgz")
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$diff" > "$t/config.json"
  local ch; ch=$(add_blob "$layout" "$t/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$ch" "$(stat -c%s "$t/config.json")" "$lh" "$(stat -c%s "$t/layer.tgz")" > "$t/manifest.json"
  local mh; mh=$(add_blob "$layout" "$t/manifest.json")
  echo "$mh $(stat -c%s "$t/manifest.json")"
  rm -rf "$t"
}

# make_layout LAYOUT TAG SEED: one-image OCI layout for the host (amd64).
make_layout() {
  local layout="$1" tag="$2" seed="$3"
  mkdir -p "$layout"
  local m; m=$(make_image "$layout" amd64 "$seed")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "${m% *}" "${m#* }" "$tag" > "$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
}

# make_multiarch_layout LAYOUT TAG SEED: an image index (amd64 + arm64).
make_multiarch_layout() {
  local layout="$1" tag="$2" seed="$3"
  mkdir -p "$layout"
  local a b; a=$(make_image "$layout" amd64 "$seed-amd64"); b=$(make_image "$layout" arm64 "$seed-arm64")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"os":"linux","architecture":"amd64"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"os":"linux","architecture":"arm64"}}]}' \
    "${a% *}" "${a#* }" "${b% *}" "${b#* }" > "$WORK/index-manifest.json"
  local ih; ih=$(add_blob "$layout" "$WORK/index-manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$ih" "$(stat -c%s "$WORK/index-manifest.json")" "$tag" > "$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
}

# seed_registry HOST SEED: pushes, with skopeo, library/busybox:latest (OCI
# image), library/multi:oci (OCI index, amd64+arm64) and library/multi:list
# (the same as a Docker manifest list). Sets DIGEST to busybox's manifest
# digest (hex).
seed_registry() {
  local r="$1" seed="$2" s="skopeo --insecure-policy"
  make_layout "$WORK/bb" v1 "$seed-busybox"
  make_multiarch_layout "$WORK/multi" v1 "$seed-multi"
  $s copy --dest-tls-verify=false "oci:$WORK/bb:v1" "docker://$r/library/busybox:latest" >/dev/null
  $s copy --all --dest-tls-verify=false "oci:$WORK/multi:v1" "docker://$r/library/multi:oci" >/dev/null
  $s copy --all --format v2s2 --dest-tls-verify=false "oci:$WORK/multi:v1" "docker://$r/library/multi:list" >/dev/null
  DIGEST=$($s inspect --tls-verify=false --raw "docker://$r/library/busybox:latest" | sha256sum | cut -d' ' -f1)
}

#!/usr/bin/env bash
# Builder benchmark (run by `scripts/bench.sh --builder`): ocibuild next to
# buildah (chroot isolation, overlay storage), docker build's classic
# builder and BuildKit (Debian's dockerd and its 20.10 CLI at
# /usr/bin/docker), all with private state under a temp dir, on:
#   busybox: FROM scratch + COPY busybox + RUN --install + COPY + RUN:
#            cold, fully cached, and after one context file changed;
#   flask:   the tutorial's Flask Dockerfile on a debootstrap base: cold
#            and fully cached.
# And ocibuild next to BuildKit only (features the others lack or name
# differently):
#   parallel: two independent CPU-bound stages (sha256 of 300 MB each)
#             and a result that copies from both, cold;
#   cache mount: RUN --mount=type=cache "installs" the dependencies a
#             COPY'd list names (each a CPU-bound step); the list gains
#             one entry and the build runs again: only the new one is work;
#   registry cache: the parallel build with its cache pushed to a
#             registry (ocibuild --cache-to mode=max to ocireg; BuildKit's
#             inline cache pushed by docker), then built on an empty store
#             (ocibuild: a new --root; docker: every image and the build
#             cache removed) from that cache.
# Medians of N runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: scripts/bench.sh --builder [--runs N]" >&2; exit 2 ;;
  esac
done
ocib_install "${OCIB_PACKAGES[@]}" buildah
ocib_build "$OCIB_ROOT/build" Release >/dev/null
BIN="$OCIB_ROOT/build/bin"
W=$(mktemp -d /tmp/ocib-bbench.XXXXXX)
DOCKERD=""
REGPID=""
cleanup() {
  [ -n "$DOCKERD" ] && kill "$DOCKERD" 2>/dev/null && wait "$DOCKERD" 2>/dev/null
  [ -n "$REGPID" ] && kill "$REGPID" 2>/dev/null && wait "$REGPID" 2>/dev/null
  buildah --root "$W/buildah" --runroot "$W/buildah-run" rm -a >/dev/null 2>&1 || true
  umount -R "$W"/buildah/overlay/*/merged 2>/dev/null || true
  umount "$W"/docker/exec/netns/* 2>/dev/null || true  # dockerd leaves its netns mounted
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", b - a}'; }

# Contexts.
mkdir -p "$W/bb" "$W/flask/src"
cp /bin/busybox "$W/bb/"
echo v1 > "$W/bb/app.txt"
cat > "$W/bb/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY app.txt /app/app.txt
RUN cat /app/app.txt
DF
printf 'from flask import Flask\napp = Flask(__name__)\n' > "$W/flask/src/app.py"
cat > "$W/flask/Dockerfile" <<'DF'
FROM debian:minbase
RUN apt-get update
RUN DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-flask
COPY src/ /opt/myapp/src/
ENTRYPOINT ["python3", "/opt/myapp/src/app.py"]
DF
source "$OCIB_ROOT/tests/build/debian_base.sh"
ensure_debian_base "$W" >/dev/null 2>&1 || true
TARBALL=$DEBIAN_BASE
mkdir -p "$W/par" "$W/cm"
cp /bin/busybox "$W/par/"; cp /bin/busybox "$W/cm/"
cat > "$W/par/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM base AS a
RUN dd if=/dev/zero bs=1M count=300 2>/dev/null | sha256sum > /a.sum
FROM base AS b
RUN dd if=/dev/zero bs=1M count=300 2>/dev/null | sha1sum > /b.sum
FROM base
COPY --from=a /a.sum /a.sum
COPY --from=b /b.sum /b.sum
DF
cat > "$W/cm/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY deps.txt /deps.txt
RUN --mount=type=cache,target=/cache for d in $(cat /deps.txt); do \
      [ -f /cache/$d ] || dd if=/dev/zero bs=1M count=150 2>/dev/null | sha256sum > /cache/$d; \
      cp /cache/$d /installed-$d; done
DF

# dockerd, private.
D="$W/docker"; mkdir -p "$D"
dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/sock" --pidfile "$D/pid" \
  --iptables=false --ip6tables=false --bridge=none --storage-driver overlay2 >"$D/log" 2>&1 &
DOCKERD=$!
DK="/usr/bin/docker -H unix://$D/sock"
for i in $(seq 100); do $DK info >/dev/null 2>&1 && break; sleep 0.2; done

BA="buildah --root $W/buildah --runroot $W/buildah-run --storage-driver overlay"
PM="podman --root $W/buildah --runroot $W/buildah-run --storage-driver overlay"

# build TOOL CONTEXT TAG -> seconds (fails the script on a failed build)
build() {
  local t0 t1
  t0=$(now)
  case "$1" in
    ocibuild) "$BIN/ocibuild" --root "$W/ocibuild" build -t "$3" "$2" >"$W/log" 2>&1 ;;
    buildah) $BA build --layers --isolation chroot --network host -t "$3" "$2" >"$W/log" 2>&1 ;;
    classic) DOCKER_BUILDKIT=0 $DK build --network host -t "$3" "$2" >"$W/log" 2>&1 ;;
    buildkit) DOCKER_BUILDKIT=1 $DK build --network host -t "$3" "$2" >"$W/log" 2>&1 ;;
  esac || { echo "$1 build of $2 failed:" >&2; tail -20 "$W/log" >&2; exit 1; }
  t1=$(now)
  elapsed "$t0" "$t1"
}

# Forgets every cached step (the base images stay).
reset() {
  case "$1" in
    ocibuild) rm -rf "$W/ocibuild" ;;
    buildah) $BA rmi -a -f >/dev/null 2>&1 || true ;;
    classic|buildkit) $DK image rm -f $($DK images -q --filter reference='bench*') >/dev/null 2>&1 || true
                      $DK image prune -af >/dev/null 2>&1 || true
                      $DK builder prune -af >/dev/null 2>&1 || true ;;
  esac
}

declare -A R
# A registry for the registry-cache rows.
"$BIN/ocireg" serve --listen 127.0.0.1:0 --root "$W/reg" --port-file "$W/reg.port" >"$W/reg.log" 2>&1 &
REGPID=$!
for i in $(seq 100); do [ -s "$W/reg.port" ] && break; sleep 0.05; done
REG="127.0.0.1:$(cat "$W/reg.port")"
for i in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.05; done
for tool in ocibuild buildkit; do
  : > "$W/par.$tool"; : > "$W/cm.$tool"; : > "$W/rc.$tool"
  for r in $(seq "$RUNS"); do
    reset "$tool"
    build "$tool" "$W/par" bench-par:1 >> "$W/par.$tool"
    printf 'alpha\nbeta\ngamma\n' > "$W/cm/deps.txt"
    build "$tool" "$W/cm" bench-cm:1 > /dev/null
    printf 'alpha\nbeta\ngamma\ndelta-%s\n' "$r$RANDOM" > "$W/cm/deps.txt"
    build "$tool" "$W/cm" bench-cm:1 >> "$W/cm.$tool"
    # Registry cache: export, then an empty store builds from it.
    case "$tool" in
      ocibuild)
        "$BIN/ocibuild" --root "$W/ocibuild" build -t bench-par:1 --cache-to "type=registry,ref=$REG/bench/par:cache$r,mode=max" "$W/par" >"$W/log" 2>&1 ||
          { echo "ocibuild --cache-to failed" >&2; tail "$W/log" >&2; exit 1; }
        rm -rf "$W/ocibuild-fresh"
        t0=$(now)
        "$BIN/ocibuild" --root "$W/ocibuild-fresh" build -t bench-par:1 --cache-from "type=registry,ref=$REG/bench/par:cache$r" "$W/par" >"$W/log" 2>&1 ||
          { echo "ocibuild --cache-from failed" >&2; tail "$W/log" >&2; exit 1; }
        elapsed "$t0" "$(now)" >> "$W/rc.$tool"
        grep -q "Using cache" "$W/log" || echo "warning: ocibuild registry cache had no hits" >&2 ;;
      buildkit)
        DOCKER_BUILDKIT=1 $DK build --network host --build-arg BUILDKIT_INLINE_CACHE=1 -t "$REG/bench/par:bk$r" "$W/par" >"$W/log" 2>&1 &&
          $DK push "$REG/bench/par:bk$r" >>"$W/log" 2>&1 || { echo "buildkit cache push failed" >&2; tail "$W/log" >&2; exit 1; }
        reset buildkit
        t0=$(now)
        DOCKER_BUILDKIT=1 $DK build --network host --cache-from "$REG/bench/par:bk$r" -t bench-par:1 "$W/par" >"$W/log" 2>&1 ||
          { echo "buildkit --cache-from failed" >&2; tail "$W/log" >&2; exit 1; }
        elapsed "$t0" "$(now)" >> "$W/rc.$tool"
        grep -qi "cached\|importing cache" "$W/log" || echo "warning: BuildKit registry cache had no hits" >&2 ;;
    esac
  done
  R[par,$tool]=$(median < "$W/par.$tool")
  R[cm,$tool]=$(median < "$W/cm.$tool")
  R[rc,$tool]=$(median < "$W/rc.$tool")
  echo "  $tool parallel/cache-mount/registry-cache done" >&2
done
kill $REGPID; wait $REGPID 2>/dev/null; REGPID=""

TOOLS="ocibuild buildah classic buildkit"
for tool in $TOOLS; do
  for r in $(seq "$RUNS"); do
    echo v1 > "$W/bb/app.txt"
    reset "$tool"
    build "$tool" "$W/bb" bench-bb:1 >> "$W/bb-cold.$tool"
    build "$tool" "$W/bb" bench-bb:1 >> "$W/bb-cached.$tool"
    echo "v$r$RANDOM" > "$W/bb/app.txt"
    build "$tool" "$W/bb" bench-bb:1 >> "$W/bb-changed.$tool"
  done
  R[bbcold,$tool]=$(median < "$W/bb-cold.$tool")
  R[bbcached,$tool]=$(median < "$W/bb-cached.$tool")
  R[bbchanged,$tool]=$(median < "$W/bb-changed.$tool")
  echo "  $tool busybox done" >&2
done

# Flask: the same base imported into every tool; cold builds start from an
# empty build cache that still holds the base.
reset_keep_base() {
  case "$1" in
    ocibuild) rm -rf "$W/ocibuild"; cp -a "$W/ocibuild-base" "$W/ocibuild" ;;
    buildah) $BA rmi -f bench-flask:1 >/dev/null 2>&1 || true
             $BA rmi --prune >/dev/null 2>&1 || true ;;
    classic|buildkit) $DK image rm -f bench-flask:1 >/dev/null 2>&1 || true
                      $DK builder prune -af >/dev/null 2>&1 || true ;;
  esac
}
if [ -s "$TARBALL" ]; then
  rm -rf "$W/ocibuild-base"
  "$BIN/ocibuild" --root "$W/ocibuild-base" import "$TARBALL" debian:minbase >/dev/null
  $PM import "$TARBALL" debian:minbase >/dev/null 2>&1
  $DK import "$TARBALL" debian:minbase >/dev/null
  for tool in $TOOLS; do
    : > "$W/fcold.$tool"; : > "$W/fc.$tool"
    for r in $(seq "$RUNS"); do
      reset_keep_base "$tool"
      build "$tool" "$W/flask" bench-flask:1 >> "$W/fcold.$tool"
      build "$tool" "$W/flask" bench-flask:1 >> "$W/fc.$tool"
    done
    R[flaskcold,$tool]=$(median < "$W/fcold.$tool")
    R[flaskcached,$tool]=$(median < "$W/fc.$tool")
    echo "  $tool flask done" >&2
  done
fi

a=$(mktemp -d); b=$(mktemp -d)
"$BIN/ocibuild" --root "$a" build -t r:1 "$W/bb" >/dev/null 2>&1
"$BIN/ocibuild" --root "$b" build -t r:1 "$W/bb" >/dev/null 2>&1
da=$("$BIN/ocibuild" --root "$a" inspect r:1 | jq -r .Digest); db=$("$BIN/ocibuild" --root "$b" inspect r:1 | jq -r .Digest)
rm -rf "$a" "$b"

row() { printf '| %-34s | %9s | %9s | %9s | %9s |\n' "$@"; }
echo
echo "Seconds, median of $RUNS. Reproducible: two fresh ocibuild builds -> $da / $db"
echo
row "workload" "ocibuild" "buildah" "classic" "BuildKit"
row "---" "---:" "---:" "---:" "---:"
for m in bbcold:"busybox, cold" bbcached:"busybox, fully cached" bbchanged:"busybox, one file changed" \
         flaskcold:"flask (apt), cold" flaskcached:"flask, fully cached" \
         par:"two independent stages, cold" cm:"cache mount, one dependency added" \
         rc:"registry cache, empty store"; do
  k=${m%%:*}
  row "${m#*:}" "${R[$k,ocibuild]:--}" "${R[$k,buildah]:--}" "${R[$k,classic]:--}" "${R[$k,buildkit]:--}"
done

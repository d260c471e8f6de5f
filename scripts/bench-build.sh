#!/usr/bin/env bash
# Builder benchmark (run by `scripts/bench.sh --builder`): ocibuild next to
# buildah (chroot isolation, overlay storage), docker build's classic
# builder and BuildKit (Debian's dockerd and its 20.10 CLI at
# /usr/bin/docker), all with private state under a temp dir, on:
#   busybox: FROM scratch + COPY busybox + RUN --install + COPY + RUN:
#            cold, fully cached, and after one context file changed;
#   flask:   the tutorial's Flask Dockerfile on a debootstrap base: cold
#            and fully cached.
# Medians of N runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
ocib_install "${OCIB_PACKAGES[@]}" buildah
ocib_build "$OCIB_ROOT/build" Release >/dev/null
BIN="$OCIB_ROOT/build/bin"
W=$(mktemp -d /tmp/ocib-bbench.XXXXXX)
DOCKERD=""
cleanup() {
  [ -n "$DOCKERD" ] && kill "$DOCKERD" 2>/dev/null && wait "$DOCKERD" 2>/dev/null
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
TARBALL=/var/cache/ocibuild-test/debian-minbase-bookworm.tgz
if [ ! -s "$TARBALL" ]; then
  OCIB_BIN_DIR="$BIN" bash "$OCIB_ROOT/tests/build/tutorial_test.sh" >/dev/null 2>&1 || true
fi

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
         flaskcold:"flask (apt), cold" flaskcached:"flask, fully cached"; do
  k=${m%%:*}
  row "${m#*:}" "${R[$k,ocibuild]:--}" "${R[$k,buildah]:--}" "${R[$k,classic]:--}" "${R[$k,buildkit]:--}"
done

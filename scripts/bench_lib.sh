# Shared by the benchmark scripts (source it after lib.sh, with NAME set):
# parses --runs (and, when the script defines bench_flag FLAG VALUE, its
# own flags that take a value; USAGE names them), installs and builds,
# makes the work dir $W, stops every PID in PIDS at exit, and offers now,
# median and start_ocireg.
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *)
      if [ $# -ge 2 ] && declare -F bench_flag >/dev/null && bench_flag "$1" "$2"; then
        shift 2
      else
        echo "usage: scripts/bench.sh --$NAME [--runs N] ${USAGE:-}" >&2; exit 2
      fi ;;
  esac
done
ocib_install "${OCIB_PACKAGES[@]}"
ocib_build "$OCIB_ROOT/build" Release >/dev/null
BIN="$OCIB_ROOT/build/bin"
W=$(mktemp -d "/tmp/ocib-$NAME-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
S="skopeo --insecure-policy"

# start_ocireg NAME [ocireg args...]: an ocireg with its store at $W/NAME;
# sets REG to host:port. Not in a subshell, so PIDS keeps the PID.
start_ocireg() {
  local d="$W/$1"; shift
  "$BIN/ocireg" serve --listen 127.0.0.1:0 --root "$d" --port-file "$d.port" "$@" >"$d.log" 2>&1 &
  PIDS+=($!)
  local i; for i in $(seq 200); do [ -s "$d.port" ] && break; sleep 0.05; done
  REG="127.0.0.1:$(cat "$d.port")"
  for i in $(seq 200); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.05; done
}

# start_distribution [EXTRA_YAML]: Debian's docker-registry (Distribution
# 2.8) with its store at $W/dist, EXTRA_YAML appended to its config; sets
# DIST to host:port and DIST_PID. Not in a subshell, so PIDS keeps the PID.
start_distribution() {
  local port; port=$(free_port)
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n%s\n' \
    "$W/dist" "$port" "${1:-}" >"$W/dist.yml"
  docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
  DIST_PID=$!; PIDS+=("$DIST_PID")
  DIST="127.0.0.1:$port"
  local i; for i in $(seq 200); do curl -sf "http://$DIST/v2/" >/dev/null && break; sleep 0.05; done
}

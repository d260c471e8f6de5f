#!/usr/bin/env bash
# Garbage collection: ocireg and Debian's docker-registry (Distribution
# 2.8) given the same content over HTTP: per repository, M images of a
# config and L layers (T of them tagged) plus O blobs no manifest names;
# at the default scale 100 repositories make 100,000 blobs, 10,000
# manifests and 2,000 tags, half of the blobs unreferenced. Then each
# collects with the server stopped, as Distribution requires
# (`ocireg gc --root`, `registry garbage-collect`): time and peak RSS.
# Last, ocireg's push and pull p99 at idle and while its online GC runs. Loopback
# only; every process it starts is stopped by PID.
#
#   scripts/bench.sh --gc [--repos N] [--manifests M] [--layers L]
#                         [--tags T] [--orphans O]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
NAME=gc
REPOS=100 MANIFESTS=100 LAYERS=4 TAGS=20 ORPHANS=500
USAGE="[--repos N] [--manifests M] [--layers L] [--tags T] [--orphans O]"
bench_flag() {
  case "$1" in
    --repos) REPOS=$2 ;;
    --manifests) MANIFESTS=$2 ;;
    --layers) LAYERS=$2 ;;
    --tags) TAGS=$2 ;;
    --orphans) ORPHANS=$2 ;;
    *) return 1 ;;
  esac
}
source "$(dirname "$0")/bench_lib.sh"
ocib_install time
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
wait_http() { local i; for i in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; return 1; }

POP="-c 4 -r $REPOS -m $MANIFESTS -l $LAYERS -t $TAGS -o $ORPHANS"
BLOBS=$((REPOS * (MANIFESTS * (LAYERS + 1) + ORPHANS)))
echo "content: $BLOBS blobs, $((REPOS * MANIFESTS)) manifests, $((REPOS * TAGS)) tags, $((REPOS * ORPHANS)) blobs unreferenced" >&2

# --- ocireg ---
P=$(free_port)
"$BIN/ocireg" serve --listen "127.0.0.1:$P" --root "$W/ocireg" >/dev/null 2>&1 &
OP=$!; PIDS+=($OP)
wait_http "http://127.0.0.1:$P/v2/"
echo "  ocireg: $("$BIN/http-load" populate "http://127.0.0.1:$P" $POP)" >&2
stop "$OP"

# --- Distribution ---
D=$(free_port)
cat > "$W/dist.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $W/distribution}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$D, secret: bench}
YML
docker-registry serve "$W/dist.yml" >/dev/null 2>&1 &
DP=$!; PIDS+=($DP)
wait_http "http://127.0.0.1:$D/v2/"
echo "  Distribution: $("$BIN/http-load" populate "http://127.0.0.1:$D" $POP)" >&2
stop "$DP"

# --- offline GC, both stopped ---
sync
/usr/bin/time -f '%e %M' -o "$W/time.oci" "$BIN/ocireg" gc --root "$W/ocireg" > "$W/gc.oci" 2>&1
sync
/usr/bin/time -f '%e %M' -o "$W/time.dist" docker-registry garbage-collect "$W/dist.yml" > "$W/gc.dist" 2>&1
read -r OSEC ORSS < "$W/time.oci"
read -r DSEC DRSS < "$W/time.dist"
echo "  ocireg gc: $(tail -1 "$W/gc.oci")" >&2
echo "  Distribution: $(grep -c 'blob eligible for deletion' "$W/gc.dist" || true) blobs eligible for deletion" >&2

# --- push and pull latency at idle and during ocireg's online GC ---
# The first online run (min_age 0s) reclaims the garbage made again here;
# then runs with min_age 1h (marking all, removing nothing) follow back to
# back until the pushes and pulls are done.
"$BIN/ocireg" serve --listen "127.0.0.1:$P" --root "$W/ocireg" >/dev/null 2>&1 &
OP=$!; PIDS+=($OP)
wait_http "http://127.0.0.1:$P/v2/"
"$BIN/http-load" populate "http://127.0.0.1:$P" -c 4 -r "$REPOS" -m 0 -l 0 -t 0 -o "$ORPHANS" >/dev/null  # garbage again
PULL_URL="http://127.0.0.1:$P/v2/bench/r0/manifests/t0"
push_p99() { "$BIN/http-load" push-small "http://127.0.0.1:$P" "bench/$1" -c 4 -n 2000 | awk '{print $8}'; }
pull_p99() { "$BIN/http-load" get "$PULL_URL" -c 4 -d 3 | awk '{print $8}'; }
IDLE=$(push_p99 idle)
IDLE_PULL=$(pull_p99)
( while [ ! -e "$W/stop" ]; do curl -s -X POST "http://127.0.0.1:$P/admin/gc?min_age=1h" >> "$W/online.json"; echo >> "$W/online.json"; done ) &
LOOP=$!
curl -s -X POST "http://127.0.0.1:$P/admin/gc?min_age=0s" > "$W/online-first.json" &
FIRST=$!
BUSY=$(push_p99 busy)
BUSY_PULL=$(pull_p99)
wait $FIRST; touch "$W/stop"; wait $LOOP
RUNS=$(grep -c '"seconds"' "$W/online.json" || true)
stop "$OP"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2fx", a / b}'; }
row() { printf '| %-44s | %12s | %12s | %8s |\n' "$1" "$2" "$3" "$4"; }
echo
echo "Content: $BLOBS blobs of 1 KiB, $((REPOS * MANIFESTS)) manifests, $((REPOS * TAGS)) tags; $((REPOS * ORPHANS)) blobs named by no manifest."
echo
row "workload" "ocireg" "Distribution" "ratio"
row "---" "---:" "---:" "---:"
row "GC, server stopped (s)" "$OSEC" "$DSEC" "$(ratio "$DSEC" "$OSEC") faster"
row "GC peak RSS (KiB)" "$ORSS" "$DRSS" "$(ratio "$ORSS" "$DRSS")"
row "ocireg push p99, idle (ms)" "$IDLE" "" ""
row "ocireg push p99, during online GC (ms)" "$BUSY" "" "$(ratio "$BUSY" "$IDLE")"
row "ocireg manifest GET p99, idle (ms)" "$IDLE_PULL" "" ""
row "ocireg manifest GET p99, during online GC (ms)" "$BUSY_PULL" "" "$(ratio "$BUSY_PULL" "$IDLE_PULL")"
echo
echo "online GC during the pushes and pulls: $(cat "$W/online-first.json"), then $RUNS more runs (min_age 1h)"

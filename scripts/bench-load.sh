#!/usr/bin/env bash
# Hostile-load benchmark (run by `scripts/bench.sh --load`): ocireg and
# Distribution 2.8, each in turn, under 1,000 concurrent connections (half
# slowloris, a quarter idle keep-alive, a quarter pulling a 1 MiB blob in a
# loop; tests/bench/hostile_load.py), while a fresh client opens a new
# connection for GET /v2/ every 100 ms and pulls a 100 MiB blob once.
# Reports the fresh client's latency (p50, p99, failures), the big pull's
# speed (next to the same pull on the idle server), and each server's
# threads and peak RSS. Medians of N runs (--runs, default 3).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
NAME=load
source "$(dirname "$0")/bench_lib.sh"
CONNS=${LOAD_CONNS:-1000}
DURATION=${LOAD_SECONDS:-20}

start_ocireg ocireg; OCI=$REG
OCI_PID=${PIDS[-1]}
start_distribution

head -c $((1 << 20)) /dev/urandom >"$W/small"
head -c $((100 << 20)) /dev/urandom >"$W/big"
SMALL=sha256:$(sha256sum "$W/small" | cut -d' ' -f1)
BIG=sha256:$(sha256sum "$W/big" | cut -d' ' -f1)
BIG_BYTES=$(stat -c%s "$W/big")
for reg in "$OCI" "$DIST"; do
  for f in small big; do
    d=$([ $f = small ] && echo "$SMALL" || echo "$BIG")
    loc=$(curl -s -D - -o /dev/null -X POST "http://$reg/v2/load/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    case "$loc" in http*) ;; *) loc="http://$reg$loc" ;; esac
    case "$loc" in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -T "$W/$f" "${loc}digest=$d")
    [ "$code" = 201 ] || { echo "push to $reg answered $code" >&2; exit 1; }
  done
done

threads() { ls "/proc/$1/task" | wc -l; }
rss_mib() { awk '/VmRSS/ {printf "%.0f\n", $2 / 1024}' "/proc/$1/status"; }
idle_pull() {  # idle_pull HOST -> MB/s
  curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "http://$1/v2/load/blobs/$BIG" |
    awk '{printf "%.0f\n", $1 / $2 / 1e6}'
}

echo "machine: $(nproc) cores; $CONNS connections for ${DURATION}s per run; $RUNS runs; median shown" >&2
for run in $(seq "$RUNS"); do
  for s in OCI DIST; do
    host=${!s}; pid_var=${s}_PID; pid=${!pid_var}
    idle_pull "$host" >>"$W/idle.$s"
    threads "$pid" >>"$W/rest_threads.$s"
    python3 "$OCIB_ROOT/tests/bench/hostile_load.py" "http://$host" "/v2/load/blobs/$SMALL" \
      "/v2/load/blobs/$BIG" "$BIG_BYTES" "$CONNS" "$DURATION" >"$W/run.$s" &
    lp=$!
    sleep $((DURATION / 2))
    threads "$pid" >>"$W/load_threads.$s"
    rss_mib "$pid" >>"$W/rss.$s"
    wait "$lp"
    line=$(cat "$W/run.$s")
    echo "  run $run $s: $line" >&2
    for k in p50_ms p99_ms failed big_pull_mbps pulls; do
      echo "$line" | tr ' ' '\n' | awk -F= -v k="$k" '$1==k {print $2}' >>"$W/$k.$s"
    done
    sleep 6  # let the slow connections time out before the other server's turn
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2fx", a / b}'; }
row() { printf '| %-46s | %10s | %12s | %8s |\n' "$1" "$2" "$3" "$4"; }
declare -A R
for s in OCI DIST; do
  for m in p50_ms p99_ms failed big_pull_mbps pulls idle rest_threads load_threads rss; do R[$m,$s]=$(median <"$W/$m.$s"); done
done
echo
row "under $CONNS hostile connections" "ocireg" "Distribution" "ratio"
row "---" "---:" "---:" "---:"
row "fresh GET /v2/ p50 (ms, lower is better)" "${R[p50_ms,OCI]}" "${R[p50_ms,DIST]}" "$(ratio "${R[p50_ms,OCI]}" "${R[p50_ms,DIST]}")"
row "fresh GET /v2/ p99 (ms, lower is better)" "${R[p99_ms,OCI]}" "${R[p99_ms,DIST]}" "$(ratio "${R[p99_ms,OCI]}" "${R[p99_ms,DIST]}")"
row "fresh GET /v2/ failed (of ~$((DURATION * 10)))" "${R[failed,OCI]}" "${R[failed,DIST]}" ""
row "100 MiB pull under load (MB/s)" "${R[big_pull_mbps,OCI]}" "${R[big_pull_mbps,DIST]}" "$(ratio "${R[big_pull_mbps,OCI]}" "${R[big_pull_mbps,DIST]}")"
row "100 MiB pull, idle server (MB/s)" "${R[idle,OCI]}" "${R[idle,DIST]}" "$(ratio "${R[idle,OCI]}" "${R[idle,DIST]}")"
row "1 MiB pulls by the pulling quarter" "${R[pulls,OCI]}" "${R[pulls,DIST]}" "$(ratio "${R[pulls,OCI]}" "${R[pulls,DIST]}")"
row "threads at rest" "${R[rest_threads,OCI]}" "${R[rest_threads,DIST]}" ""
row "threads under load" "${R[load_threads,OCI]}" "${R[load_threads,DIST]}" ""
row "RSS under load (MiB, lower is better)" "${R[rss,OCI]}" "${R[rss,DIST]}" "$(ratio "${R[rss,OCI]}" "${R[rss,DIST]}")"

#!/usr/bin/env bash
# Benchmarks ocireg against Debian's docker-registry (Distribution 2.8) on
# the same workload in one run, next to the machine's limits (sha256 speed,
# nginx GET and WebDAV PUT of the same file). Everything on loopback;
# every process it starts is stopped by PID.
#
#   scripts/bench.sh [--runs N] [--size-mib N] [--duration S]
#   scripts/bench.sh --builder     (ocibuild vs buildah and docker build;
#                                   see scripts/bench-build.sh)
#   scripts/bench.sh --client      (ocibuild push/pull vs skopeo copy;
#                                   see scripts/bench-client.sh)
#   scripts/bench.sh --mirror      (ocireg as a mirror vs direct pulls and
#                                   Distribution's proxy; bench-mirror.sh)
#   scripts/bench.sh --load        (1,000 hostile connections: slowloris,
#                                   idle, pulling; bench-load.sh)
#   scripts/bench.sh --gc          (garbage collection: ocireg vs Distribution's
#                                   garbage-collect; bench-gc.sh)
#   scripts/bench.sh --tls         (TLS and htpasswd on both servers: push,
#                                   pull, authenticated GET/HEAD rates;
#                                   bench-tls.sh)
#   scripts/bench.sh --s3          (blob bytes on Ceph RGW: ocireg vs
#                                   Distribution's S3 driver; bench-s3.sh)
#
# Prints each figure for both servers and the ratio ocireg/Distribution
# (for latencies and RSS, lower is better), medians of N runs. ocireg
# fsyncs a blob before acknowledging it and Distribution never does, so the
# pushes are also measured against an ocireg with "sync": false.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=3
SIZE_MIB=1024
DURATION=10
while [ $# -gt 0 ]; do
  case "$1" in
    --builder) shift; exec bash "$(dirname "$0")/bench-build.sh" "$@" ;;
    --client) shift; exec bash "$(dirname "$0")/bench-client.sh" "$@" ;;
    --mirror) shift; exec bash "$(dirname "$0")/bench-mirror.sh" "$@" ;;
    --load) shift; exec bash "$(dirname "$0")/bench-load.sh" "$@" ;;
    --tls) shift; exec bash "$(dirname "$0")/bench-tls.sh" "$@" ;;
    --gc) shift; exec bash "$(dirname "$0")/bench-gc.sh" "$@" ;;
    --s3) shift; exec bash "$(dirname "$0")/bench-s3.sh" "$@" ;;
    --runs) RUNS=$2; shift 2 ;;
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "usage: scripts/bench.sh [--runs N] [--size-mib N] [--duration S] | --builder | --client | --mirror | --load | --tls | --gc | --s3" >&2; exit 2 ;;
  esac
done

ocib_install "${OCIB_PACKAGES[@]}" docker-registry nginx-light wrk
ocib_build "$OCIB_ROOT/build" Release >/dev/null
BIN="$OCIB_ROOT/build/bin"

W=$(mktemp -d /tmp/ocib-bench.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

wait_http() { local i; for i in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; return 1; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN {printf "%.0f", b / t / 1e6}'; }

# --- servers ---
OCI_PORT=$(free_port)
"$BIN/ocireg" serve --config "$OCIB_ROOT/conf/registry.json" --listen "127.0.0.1:$OCI_PORT" \
  --root "$W/ocireg" >"$W/ocireg.log" 2>&1 &
OCI_PID=$!; PIDS+=("$OCI_PID")
# The same server without fsync, which is Distribution's durability level.
echo '{"sync": false}' > "$W/nosync.json"
NOSYNC_PORT=$(free_port)
"$BIN/ocireg" serve --config "$W/nosync.json" --listen "127.0.0.1:$NOSYNC_PORT" \
  --root "$W/ocireg-nosync" >"$W/ocireg-nosync.log" 2>&1 &
NOSYNC_PID=$!; PIDS+=("$NOSYNC_PID")
DIST_PORT=$(free_port)
cat > "$W/dist.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $W/distribution
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$DIST_PORT
  secret: bench
YML
docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
DIST_PID=$!; PIDS+=("$DIST_PID")
NGX_PORT=$(free_port)
mkdir -p "$W/www" "$W/nginx/tmp" "$W/nginx/logs"
cat > "$W/nginx.conf" <<NGX
user root;
worker_processes 2;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $W/nginx/tmp;
  server {
    listen 127.0.0.1:$NGX_PORT;
    root $W/www;
    client_max_body_size 0;
    dav_methods PUT;
  }
}
NGX
nginx -c "$W/nginx.conf" -p "$W/nginx" &
NGX_PID=$!; PIDS+=("$NGX_PID")
OCI="http://127.0.0.1:$OCI_PORT"
DIST="http://127.0.0.1:$DIST_PORT"
NGX="http://127.0.0.1:$NGX_PORT"
NOSYNC="http://127.0.0.1:$NOSYNC_PORT"
wait_http "$NOSYNC/v2/" && wait_http "$OCI/v2/" && wait_http "$DIST/v2/" && wait_http "$NGX/" || { echo "a server did not start"; exit 1; }

# --- data ---
BLOB="$W/blob"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$BLOB"
BYTES=$(stat -c%s "$BLOB")

# Makes the blob unique for run $1 (so no server sees it twice) and prints
# its digest; the time of `openssl dgst -sha256` goes to $W/sha.times.
new_blob() {
  printf 'run%05d' "$1" | dd of="$BLOB" conv=notrunc status=none
  local t0 t1 h
  t0=$(date +%s.%N)
  h=$(openssl dgst -sha256 -r "$BLOB" | cut -d' ' -f1)
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{print $2-$1}' >> "$W/sha.times"
  echo "sha256:$h"
}

location() {  # location BASE HEADERS_FILE -> absolute URL with ? or &
  local l; l=$(tr -d '\r' < "$2" | awk -F': ' 'tolower($1)=="location"{print $2}' | tail -1)
  case "$l" in http*) ;; *) l="$1$l" ;; esac
  case "$l" in *\?*) echo "$l&" ;; *) echo "$l?" ;; esac
}

# Each timed push starts with no dirty pages left from the previous one, so
# neither server pays for the other's write-back.
settle() { sync; sleep 0.5; }

push_mono() {  # push_mono BASE REPO DIGEST -> seconds
  settle
  curl -s -o /dev/null -D "$W/h" -X POST "$1/v2/$2/blobs/uploads/"
  local loc; loc=$(location "$1" "$W/h")
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X PUT -T "$BLOB" \
    -H 'Content-Type: application/octet-stream' "${loc}digest=$3" > "$W/r"
  read -r code t < "$W/r"
  [ "$code" = 201 ] || { echo "monolithic push to $1 answered $code" >&2; exit 1; }
  echo "$t"
}

# Chunked pushes run in http-load: one keep-alive connection doing POST,
# 16 MiB PATCHes and the closing PUT, as docker and containerd push (a curl
# process per chunk would time process start-up, not the server).
push_chunked() {  # push_chunked BASE REPO DIGEST -> seconds
  settle
  "$BIN/http-load" push-chunked "$1" "$2" "$BLOB" "$3" -s $((16 << 20)) ||
    { echo "chunked push to $1 failed" >&2; exit 1; }
}

pull() {  # pull URL -> seconds
  curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$1" > "$W/r"
  read -r n t < "$W/r"
  [ "$n" = "$BYTES" ] || { echo "pull of $1 got $n bytes" >&2; exit 1; }
  echo "$t"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

declare -A R  # results: R[metric,server]

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); blob $SIZE_MIB MiB; $RUNS runs; median shown" >&2
for run in $(seq "$RUNS"); do
  D=$(new_blob "$run")
  for s in OCI DIST NOSYNC; do
    base=${!s}
    push_mono "$base" "bench/mono$run" "$D" >> "$W/mono.$s"
    pull "$base/v2/bench/mono$run/blobs/$D" >> "$W/pull.$s"
  done
  D=$(new_blob "$((run + 1000))")
  for s in OCI DIST NOSYNC; do push_chunked "${!s}" "bench/chunk$run" "$D" >> "$W/chunk.$s"; done
  cp "$BLOB" "$W/www/blob"
  pull "$NGX/blob" >> "$W/pull.NGX"
  rm -f "$W/www/blob"
  curl -s -o /dev/null -w '%{time_total}\n' -T "$BLOB" "$NGX/put$run" >> "$W/mono.NGX"
  rm -f "$W/www/put$run"
  echo "  run $run: seconds per push/pull: mono $(tail -1 "$W/mono.OCI")/$(tail -1 "$W/mono.DIST")/$(tail -1 "$W/mono.NOSYNC")" \
    "chunked $(tail -1 "$W/chunk.OCI")/$(tail -1 "$W/chunk.DIST")/$(tail -1 "$W/chunk.NOSYNC")" \
    "pull $(tail -1 "$W/pull.OCI")/$(tail -1 "$W/pull.DIST") (ocireg/Distribution/ocireg without fsync)" >&2
done
for s in OCI DIST NGX NOSYNC; do
  R[mono,$s]=$(mbps "$BYTES" "$(median < "$W/mono.$s")")
  R[pull,$s]=$(mbps "$BYTES" "$(median < "$W/pull.$s")")
done
for s in OCI DIST NOSYNC; do R[chunk,$s]=$(mbps "$BYTES" "$(median < "$W/chunk.$s")"); done
R[sha,M]=$(mbps "$BYTES" "$(median < "$W/sha.times")")

# A small image for the request-rate workloads.
for s in OCI DIST; do
  base=${!s}
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$W/cfg"
  cd_=sha256:$(sha256sum "$W/cfg" | cut -d' ' -f1)
  curl -s -o /dev/null -D "$W/h" -X POST "$base/v2/bench/img/blobs/uploads/"
  curl -s -o /dev/null -X PUT --data-binary @"$W/cfg" -H 'Content-Type: application/octet-stream' "$(location "$base" "$W/h")digest=$cd_"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[]}' \
    "$cd_" "$(stat -c%s "$W/cfg")" > "$W/man"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$W/man" \
    -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' "$base/v2/bench/img/manifests/latest")
  [ "$code" = 201 ] || { echo "manifest PUT to $base answered $code" >&2; exit 1; }
done

# Request-rate workloads, once per run for each server; medians below.
p99_ms() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f\n", v}' "$1"; }
for run in $(seq "$RUNS"); do
  for s in OCI DIST; do
    base=${!s}
    pid_var=${s}_PID; pid=${!pid_var}
    settle
    c0=$(cpu_ticks "$pid")
    wrk -t2 -c64 -d"${DURATION}s" --latency \
      -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "$base/v2/bench/img/manifests/latest" > "$W/wrk.$s"
    c1=$(cpu_ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' "$W/wrk.$s")
    awk '/Requests\/sec/ {printf "%.0f\n", $2}' "$W/wrk.$s" >> "$W/mget.$s"
    p99_ms "$W/wrk.$s" >> "$W/mgetp99.$s"
    awk -v c="$((c1 - c0))" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f\n", c / hz / n * 1000}' >> "$W/cpu.$s"
    errs=$(awk '/Non-2xx/ {print $4}' "$W/wrk.$s")
    [ -z "$errs" ] || echo "warning: $s answered $errs non-2xx manifest GETs" >&2
    "$BIN/http-load" head "$base/v2/bench/img/blobs/$cd_" -c 64 -d "$DURATION" > "$W/headrun.$s"
    awk '{printf "%.0f\n", $4}' "$W/headrun.$s" >> "$W/head.$s"
    awk '{print $8}' "$W/headrun.$s" >> "$W/headp99.$s"
    [ "$(awk '{print $10}' "$W/headrun.$s")" = 0 ] || echo "warning: $s HEAD errors: $(cat "$W/headrun.$s")" >&2
    settle
    "$BIN/http-load" push-small "$base" bench/small -c 8 -n 2000 > "$W/smallrun.$s"
    awk '{print $4}' "$W/smallrun.$s" >> "$W/small.$s"
  done
  echo "  run $run: manifest GET req/s $(tail -1 "$W/mget.OCI")/$(tail -1 "$W/mget.DIST") p99 ms $(tail -1 "$W/mgetp99.OCI")/$(tail -1 "$W/mgetp99.DIST")," \
    "blob HEAD req/s $(tail -1 "$W/head.OCI")/$(tail -1 "$W/head.DIST") p99 ms $(tail -1 "$W/headp99.OCI")/$(tail -1 "$W/headp99.DIST")," \
    "small blobs/s $(tail -1 "$W/small.OCI")/$(tail -1 "$W/small.DIST") (ocireg/Distribution)" >&2
done
sleep 6  # idle keep-alive connections time out
for s in OCI DIST; do
  for m in mget mgetp99 cpu head headp99 small; do R[$m,$s]=$(median < "$W/$m.$s"); done
  pid_var=${s}_PID
  R[rss,$s]=$(peak_rss_mib "${!pid_var}")
  R[threads,$s]=$(ls "/proc/${!pid_var}/task" | wc -l)
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2fx", a / b}'; }
row() { printf '| %-40s | %12s | %12s | %8s |\n' "$1" "$2" "$3" "$4"; }
echo
echo "Machine: sha256 (openssl dgst -sha256 on the blob) ${R[sha,M]} MB/s; nginx GET ${R[pull,NGX]} MB/s, nginx WebDAV PUT ${R[mono,NGX]} MB/s"
echo
row "workload" "ocireg" "Distribution" "ratio"
row "---" "---:" "---:" "---:"
row "monolithic push ${SIZE_MIB} MiB (MB/s)" "${R[mono,OCI]}" "${R[mono,DIST]}" "$(ratio "${R[mono,OCI]}" "${R[mono,DIST]}")"
row "chunked push, 16 MiB chunks (MB/s)" "${R[chunk,OCI]}" "${R[chunk,DIST]}" "$(ratio "${R[chunk,OCI]}" "${R[chunk,DIST]}")"
row "monolithic push, ocireg without fsync" "${R[mono,NOSYNC]}" "${R[mono,DIST]}" "$(ratio "${R[mono,NOSYNC]}" "${R[mono,DIST]}")"
row "chunked push, ocireg without fsync" "${R[chunk,NOSYNC]}" "${R[chunk,DIST]}" "$(ratio "${R[chunk,NOSYNC]}" "${R[chunk,DIST]}")"
row "pull ${SIZE_MIB} MiB (MB/s)" "${R[pull,OCI]}" "${R[pull,DIST]}" "$(ratio "${R[pull,OCI]}" "${R[pull,DIST]}")"
row "pull vs nginx GET" "$(ratio "${R[pull,OCI]}" "${R[pull,NGX]}")" "$(ratio "${R[pull,DIST]}" "${R[pull,NGX]}")" ""
row "manifest GET, 64 conns (req/s)" "${R[mget,OCI]}" "${R[mget,DIST]}" "$(ratio "${R[mget,OCI]}" "${R[mget,DIST]}")"
row "manifest GET p99 (ms, lower is better)" "${R[mgetp99,OCI]}" "${R[mgetp99,DIST]}" "$(ratio "${R[mgetp99,OCI]}" "${R[mgetp99,DIST]}")"
row "blob HEAD, 64 conns (req/s)" "${R[head,OCI]}" "${R[head,DIST]}" "$(ratio "${R[head,OCI]}" "${R[head,DIST]}")"
row "blob HEAD p99 (ms, lower is better)" "${R[headp99,OCI]}" "${R[headp99,DIST]}" "$(ratio "${R[headp99,OCI]}" "${R[headp99,DIST]}")"
row "2,000 small blobs, 8 workers (blobs/s)" "${R[small,OCI]}" "${R[small,DIST]}" "$(ratio "${R[small,OCI]}" "${R[small,DIST]}")"
row "server CPU per manifest GET (ms)" "${R[cpu,OCI]}" "${R[cpu,DIST]}" "$(ratio "${R[cpu,OCI]}" "${R[cpu,DIST]}")"
row "peak RSS (MiB, lower is better)" "${R[rss,OCI]}" "${R[rss,DIST]}" "$(ratio "${R[rss,OCI]}" "${R[rss,DIST]}")"
row "threads at rest after the runs" "${R[threads,OCI]}" "${R[threads,DIST]}" ""

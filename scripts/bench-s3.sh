#!/usr/bin/env bash
# ocireg with blob bytes on S3 against Distribution 2.8's S3 driver, both on
# the same throwaway Ceph RGW (tests/s3/ceph_lib.sh; memstore, so the
# object store's disk is RAM), in one run:
#   * monolithic and chunked (16 MiB PATCHes) push of a SIZE_MIB blob, pull;
#   * manifest GET at 64 connections (wrk), with server CPU per request;
#   * 2,000 small blobs pushed by 8 workers (http-load push-small).
# Distribution's blob GETs are proxied (redirect disabled), as ocireg's are.
# ocireg runs as: one replica with its records in its embedded store; the
# same with its local blob cache on (transfers only); one replica with its
# records in PostgreSQL (a throwaway postgresql 15); and three such
# replicas behind nginx-light (round robin), for which the server CPU per
# request is the three replicas' sum and nginx's own is shown apart, with
# the latency nginx adds (median, through nginx less direct to a replica).
#
#   scripts/bench.sh --s3 [--runs N] [--size-mib N]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
NAME=s3
SIZE_MIB=1024
USAGE="[--size-mib N]"
bench_flag() { case "$1" in --size-mib) SIZE_MIB=$2 ;; *) return 1 ;; esac; }
source "$(dirname "$0")/bench_lib.sh"
ocib_install wrk docker-registry ceph-mon ceph-osd radosgw ceph-common postgresql nginx-light
source "$OCIB_ROOT/tests/s3/ceph_lib.sh"
source "$OCIB_ROOT/tests/pg/pg_lib.sh"
source "$OCIB_ROOT/tests/pg/nginx_lib.sh"
trap 'cleanup; stop_pg; stop_ceph' EXIT

# Room for every run's blobs on both servers and their uploads in flight.
start_ceph "$(mktemp -d /tmp/cb.XXXX)" $((SIZE_MIB * (RUNS * 2 + 8) + 2048)) >&2
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -u "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
  -H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d" " -f1)" -X PUT "$S3_ENDPOINT/dist" >/dev/null ||
  { echo "cannot create the bucket for Distribution" >&2; exit 1; }
cat >"$W/ocireg.json" <<JSON
{"storage": {"s3": {"regionendpoint": "$S3_ENDPOINT", "bucket": "ocireg", "rootdirectory": "/bench",
  "accesskey": "$S3_ACCESS_KEY", "secretkey": "$S3_SECRET_KEY"}}}
JSON
start_ocireg ocireg --config "$W/ocireg.json"
OCI="http://$REG"; OCI_PID=${PIDS[-1]}
# The same with its local blob cache on (storage.s3.cache_mib).
cat >"$W/ocireg-cache.json" <<JSON
{"storage": {"s3": {"regionendpoint": "$S3_ENDPOINT", "bucket": "ocireg", "rootdirectory": "/cached",
  "accesskey": "$S3_ACCESS_KEY", "secretkey": "$S3_SECRET_KEY", "cache_mib": $((SIZE_MIB * 4))}}}
JSON
start_ocireg ocireg-cache --config "$W/ocireg-cache.json"
OCIC="http://$REG"
# Records in PostgreSQL: one replica, and three behind nginx.
start_pg "$(mktemp -d /tmp/pb.XXXX)" >&2
pg_config() {  # pg_config FILE SCHEMA PREFIX
  cat >"$1" <<JSON
{"database": {"enabled": true, "host": "127.0.0.1", "port": $PG_PORT, "user": "ocib", "dbname": "postgres",
  "sslmode": "disable", "schema": "$2"},
 "storage": {"s3": {"regionendpoint": "$S3_ENDPOINT", "bucket": "ocireg", "rootdirectory": "$3",
  "accesskey": "$S3_ACCESS_KEY", "secretkey": "$S3_SECRET_KEY"}}}
JSON
}
pg_config "$W/ocireg-pg.json" one /pg1
start_ocireg ocireg-pg --config "$W/ocireg-pg.json"
OCIP="http://$REG"; OCIP_PID=${PIDS[-1]}
pg_config "$W/ocireg-n3.json" three /pg3
N3_PORTS=(); N3_PIDS=()
for i in 1 2 3; do
  start_ocireg "ocireg-n3-$i" --config "$W/ocireg-n3.json"
  N3_PORTS+=("${REG#*:}"); N3_PIDS+=("${PIDS[-1]}")
done
N3_REPLICA="http://$REG"
NP=$(free_port)
start_nginx_lb "$W/nginx" "$NP" "${N3_PORTS[@]}" >&2 || exit 1
PIDS+=("$NGINX_PID")
N3="http://127.0.0.1:$NP"
start_distribution
kill "$DIST_PID"; wait "$DIST_PID" 2>/dev/null || true
port=${DIST#*:}
cat >"$W/dist.yml" <<YML
version: 0.1
log:
  level: error
storage:
  s3:
    region: us-east-1
    regionendpoint: $S3_ENDPOINT
    bucket: dist
    accesskey: $S3_ACCESS_KEY
    secretkey: $S3_SECRET_KEY
    secure: false
    v4auth: true
    rootdirectory: /bench
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
YML
# A custom CA bundle in the environment makes its AWS SDK panic.
env -u AWS_CA_BUNDLE docker-registry serve "$W/dist.yml" >"$W/dist2.log" 2>&1 &
DIST_PID=$!; PIDS+=("$DIST_PID")
for i in $(seq 200); do curl -sf "http://$DIST/v2/" >/dev/null && break; sleep 0.05; done
curl -sf "http://$DIST/v2/" >/dev/null || { echo "Distribution did not start:"; cat "$W/dist2.log"; exit 1; } >&2
DIST="http://$DIST"

BLOB="$W/blob"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$BLOB"
BYTES=$(stat -c%s "$BLOB")
new_blob() {
  printf 'run%05d' "$1" | dd of="$BLOB" conv=notrunc status=none
  echo "sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)" | tee "$W/digest.$1"
}
new_digest() { cat "$W/digest.$1"; }
location() {
  local l; l=$(tr -d '\r' <"$2" | awk -F': ' 'tolower($1)=="location"{print $2}' | tail -1)
  case "$l" in http*) ;; *) l="$1$l" ;; esac
  case "$l" in *\?*) echo "$l&" ;; *) echo "$l?" ;; esac
}
push_mono() {
  curl -s -o /dev/null -D "$W/h" -X POST "$1/v2/$2/blobs/uploads/"
  local loc; loc=$(location "$1" "$W/h")
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X PUT -T "$BLOB" \
    -H 'Content-Type: application/octet-stream' "${loc}digest=$3" >"$W/r"
  read -r code t <"$W/r"
  [ "$code" = 201 ] || { echo "push to $1 answered $code" >&2; exit 1; }
  echo "$t"
}
pull() {
  curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$1" >"$W/r"
  read -r n t <"$W/r"
  [ "$n" = "$BYTES" ] || { echo "pull of $1 got $n bytes" >&2; exit 1; }
  echo "$t"
}
# Each timed push starts with RGW's garbage collection done (the objects
# the previous push deleted), so neither server pays for the other's.
settle() {
  timeout 120 radosgw-admin -c "$CEPH_DIR/ceph.conf" gc process --include-all >/dev/null 2>&1 || true
  sync; sleep 0.5
}
mbps() { awk -v b="$1" -v t="$2" 'BEGIN {printf "%.0f", b / t / 1e6}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "machine: $(nproc) cores; blob $SIZE_MIB MiB; $RUNS runs; medians shown" >&2
TRANSFER_SERVERS="OCI OCIC OCIP N3 DIST"
for run in $(seq "$RUNS"); do
  D=$(new_blob "$run")
  D2=$(new_blob "$((run + 1000))")
  for s in $TRANSFER_SERVERS; do
    new_blob "$run" >/dev/null
    settle
    push_mono "${!s}" "bench/mono$run" "$D" >>"$W/mono.$s"
    pull "${!s}/v2/bench/mono$run/blobs/$D" >>"$W/pull.$s"
    new_blob "$((run + 1000))" >/dev/null
    settle
    "$BIN/http-load" push-chunked "${!s}" "bench/chunk$run" "$BLOB" "$D2" -s $((16 << 20)) >>"$W/chunk.$s" ||
      { echo "chunked push to ${!s} failed" >&2; exit 1; }
    [ "$s" = DIST ] && continue
    # ocireg's blobs go at once (unlinked, then collected), so the memstore
    # OSD's RAM holds one server's; Distribution deletes bytes only
    # offline, so its stay.
    for repo in "bench/mono$run" "bench/chunk$run"; do
      for d in "$D" "$D2"; do curl -s -o /dev/null -X DELETE "${!s}/v2/$repo/blobs/$d"; done
    done
    curl -sf -o /dev/null -X POST "${!s}/admin/gc?min_age=0s&pace=false" ||
      echo "warning: gc on ${!s} failed" >&2
  done
  line="  run $run: seconds (mono/chunked/pull)"
  for s in $TRANSFER_SERVERS; do
    line+=" $s $(tail -1 "$W/mono.$s")/$(tail -1 "$W/chunk.$s")/$(tail -1 "$W/pull.$s")"
  done
  echo "$line" >&2
done

for s in OCI OCIP N3 DIST; do
  base=${!s}
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
  cd_=sha256:$(sha256sum "$W/cfg" | cut -d' ' -f1)
  curl -s -o /dev/null -D "$W/h" -X POST "$base/v2/bench/img/blobs/uploads/"
  curl -s -o /dev/null -X PUT --data-binary @"$W/cfg" -H 'Content-Type: application/octet-stream' "$(location "$base" "$W/h")digest=$cd_"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[]}' \
    "$cd_" "$(stat -c%s "$W/cfg")" >"$W/man"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$W/man" \
    -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' "$base/v2/bench/img/manifests/latest")
  [ "$code" = 201 ] || { echo "manifest PUT to $base answered $code" >&2; exit 1; }
done
p99_ms() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f\n", v}' "$1"; }
p50_ms() { awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.3f\n", v}' "$1"; }
N3_PID=${N3_PIDS[0]}
server_ticks() {  # the server's CPU ticks: for N3 its three replicas
  if [ "$1" = N3 ]; then
    echo $(( $(cpu_ticks "${N3_PIDS[0]}") + $(cpu_ticks "${N3_PIDS[1]}") + $(cpu_ticks "${N3_PIDS[2]}") ))
  else
    local v=${1}_PID; cpu_ticks "${!v}"
  fi
}
tree_ticks() {  # CPU ticks of a process and its children
  local t=0 p
  for p in "$1" $(ps --ppid "$1" -o pid= 2>/dev/null); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(cpu_ticks "$p")))
  done
  echo "$t"
}
pg_ticks() { tree_ticks "$PG_PID"; }  # the server and its backends
for run in $(seq "$RUNS"); do
  # Latency at low load: one connection, through nginx and direct.
  for t in N3 N3_REPLICA; do
    wrk -t1 -c1 -d5s --latency -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "${!t}/v2/bench/img/manifests/latest" >"$W/lat.$t"
    p50_ms "$W/lat.$t" >>"$W/p50.$t"
  done
  for s in OCI OCIP N3 DIST; do
    c0=$(server_ticks "$s")
    n0=$(tree_ticks "$NGINX_PID")
    g0=$(pg_ticks)
    wrk -t2 -c64 -d10s --latency -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "${!s}/v2/bench/img/manifests/latest" >"$W/wrk.$s"
    c1=$(server_ticks "$s")
    n1=$(tree_ticks "$NGINX_PID")
    g1=$(pg_ticks)
    reqs=$(awk '/requests in/ {print $1}' "$W/wrk.$s")
    awk '/Requests\/sec/ {printf "%.0f\n", $2}' "$W/wrk.$s" >>"$W/mget.$s"
    p99_ms "$W/wrk.$s" >>"$W/mgetp99.$s"
    awk -v c="$((c1 - c0))" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f\n", c / hz / n * 1000}' >>"$W/cpu.$s"
    [ "$s" = N3 ] && awk -v c="$((n1 - n0))" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f\n", c / hz / n * 1000}' >>"$W/cpu.NGINX"
    case "$s" in OCIP | N3)
      awk -v c="$((g1 - g0))" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f\n", c / hz / n * 1000}' >>"$W/pgcpu.$s" ;;
    esac
    errs=$(awk '/Non-2xx/ {print $4}' "$W/wrk.$s")
    [ -z "$errs" ] || echo "warning: $s answered $errs non-2xx manifest GETs" >&2
    settle
    "$BIN/http-load" push-small "${!s}" "bench/small$run" -c 8 -n 2000 >"$W/smallrun.$s"
    awk '{print $4}' "$W/smallrun.$s" >>"$W/small.$s"
  done
  echo "  run $run: manifest GET req/s OCI/OCIP/N3/DIST $(tail -1 "$W/mget.OCI")/$(tail -1 "$W/mget.OCIP")/$(tail -1 "$W/mget.N3")/$(tail -1 "$W/mget.DIST")" \
    "p99 ms $(tail -1 "$W/mgetp99.OCI")/$(tail -1 "$W/mgetp99.OCIP")/$(tail -1 "$W/mgetp99.N3")/$(tail -1 "$W/mgetp99.DIST")," \
    "small blobs/s $(tail -1 "$W/small.OCI")/$(tail -1 "$W/small.OCIP")/$(tail -1 "$W/small.N3")/$(tail -1 "$W/small.DIST")," \
    "p50 ms nginx/direct $(tail -1 "$W/p50.N3")/$(tail -1 "$W/p50.N3_REPLICA")" >&2
done

declare -A R
for s in $TRANSFER_SERVERS; do
  R[mono,$s]=$(mbps "$BYTES" "$(median <"$W/mono.$s")")
  R[chunk,$s]=$(mbps "$BYTES" "$(median <"$W/chunk.$s")")
  R[pull,$s]=$(mbps "$BYTES" "$(median <"$W/pull.$s")")
done
for s in OCI OCIP N3 DIST; do
  for m in mget mgetp99 cpu small; do R[$m,$s]=$(median <"$W/$m.$s"); done
done
R[cpu,NGINX]=$(median <"$W/cpu.NGINX")
R[pgcpu,OCIP]=$(median <"$W/pgcpu.OCIP"); R[pgcpu,N3]=$(median <"$W/pgcpu.N3")
R[p50,N3]=$(median <"$W/p50.N3"); R[p50,N3_REPLICA]=$(median <"$W/p50.N3_REPLICA")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2fx", a / b}'; }
row() { printf '| %-42s | %9s | %9s | %9s | %9s | %8s | %8s | %8s |\n' "$@"; }
sha=$( { time -p openssl dgst -sha256 "$BLOB" >/dev/null; } 2>&1 | awk '/real/ {print $2}')
echo
echo "Machine: $(nproc) cores; sha256 $(mbps "$BYTES" "$sha") MB/s; the object store is Ceph RGW 16 (beast) on one memstore OSD;"
echo "PostgreSQL 15 on the same machine. Columns: ocireg with its embedded index (RocksDB); with its records in"
echo "PostgreSQL, one replica (PG) and three behind nginx (PGx3); Distribution 2.8 (S3 driver); ratios to Distribution."
row "S3 backend, $SIZE_MIB MiB blob (medians of $RUNS)" "RocksDB" "PG" "PGx3" "Distrib." "RocksDB" "PG" "PGx3"
row "---" "---" "---" "---" "---" "---" "---" "---"
line() {  # line LABEL METRIC
  row "$1" "${R[$2,OCI]}" "${R[$2,OCIP]}" "${R[$2,N3]}" "${R[$2,DIST]}" \
    "$(ratio "${R[$2,OCI]}" "${R[$2,DIST]}")" "$(ratio "${R[$2,OCIP]}" "${R[$2,DIST]}")" "$(ratio "${R[$2,N3]}" "${R[$2,DIST]}")"
}
line "monolithic push MB/s" mono
line "chunked push (16 MiB PATCHes) MB/s" chunk
line "pull MB/s" pull
line "manifest GET req/s (64 connections)" mget
line "manifest GET p99 ms (lower is better)" mgetp99
line "server CPU ms per manifest GET" cpu
line "small blobs/s (2,000 x 1 KiB, 8 workers)" small
echo
echo "With cache_mib (RocksDB index): monolithic push ${R[mono,OCIC]} MB/s ($(ratio "${R[mono,OCIC]}" "${R[mono,DIST]}")), chunked ${R[chunk,OCIC]} MB/s ($(ratio "${R[chunk,OCIC]}" "${R[chunk,DIST]}")), pull ${R[pull,OCIC]} MB/s ($(ratio "${R[pull,OCIC]}" "${R[pull,DIST]}"))."
echo "PostgreSQL's own CPU per manifest GET: ${R[pgcpu,OCIP]} ms (one replica), ${R[pgcpu,N3]} ms (three)."
echo "Three replicas: server CPU per manifest GET ${R[cpu,N3]} ms summed over the replicas (one replica: ${R[cpu,OCIP]} ms), plus nginx's ${R[cpu,NGINX]} ms;"
echo "latency at one connection, median: ${R[p50,N3]} ms through nginx, ${R[p50,N3_REPLICA]} ms direct to a replica (nginx adds $(awk -v a="${R[p50,N3]}" -v b="${R[p50,N3_REPLICA]}" 'BEGIN {printf "%.3f", a - b}') ms)."

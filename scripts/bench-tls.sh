#!/usr/bin/env bash
# TLS and authentication: ocireg and Debian's docker-registry
# (Distribution 2.8) configured the same way (HTTPS with one certificate,
# htpasswd users with bcrypt cost 10), on the same workloads in one run:
# push and pull of a large blob over TLS with Basic credentials, and
# authenticated manifest GET and blob HEAD at 64 connections. ocireg's
# anonymous rate over the same TLS is measured too, to show what
# authentication costs. Prints medians of N runs, the ratios, and the
# machine's own AES-128-GCM speed. Loopback only; every process it starts
# is stopped by PID.
#
#   scripts/bench.sh --tls [--runs N] [--size-mib N] [--duration S]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
NAME=tls
SIZE_MIB=1024
DURATION=10
USAGE="[--size-mib N] [--duration S]"
bench_flag() {
  case "$1" in
    --size-mib) SIZE_MIB=$2 ;;
    --duration) DURATION=$2 ;;
    *) return 1 ;;
  esac
}
source "$(dirname "$0")/bench_lib.sh"
mbps() { awk -v b="$1" -v t="$2" 'BEGIN {printf "%.0f", b / t / 1e6}'; }
q() { "$@" >/dev/null 2>&1; }

# --- certificates and users ---
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout "$W/ca.key" -out "$W/ca.pem"
q openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$W/server.key" -out "$W/server.csr"
printf 'subjectAltName=IP:127.0.0.1\n' > "$W/san.ext"
q openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
  -extfile "$W/san.ext" -out "$W/server.pem"
htpasswd -nbB -C 10 bench 'bench-pass' > "$W/htpasswd" 2>/dev/null
AUTH="Authorization: Basic $(printf 'bench:bench-pass' | base64)"

# --- servers ---
start_configured() {  # start_configured NAME CONFIG -> sets PORT_NAME, PID_NAME
  printf '%s\n' "$2" > "$W/$1.json"
  "$BIN/ocireg" serve --config "$W/$1.json" --port-file "$W/$1.port" >/dev/null 2>"$W/$1.err" &
  eval "PID_$1=$!"; PIDS+=($!)
  local i; for i in $(seq 200); do [ -s "$W/$1.port" ] && break; sleep 0.05; done
  eval "PORT_$1=$(cat "$W/$1.port")"
}
TLS='"tls": {"cert_file": "'$W'/server.pem", "key_file": "'$W'/server.key"}'
start_configured OCI '{"listen": "127.0.0.1:0", "root": "'$W'/ocireg", '"$TLS"', "log_format": "off",
  "auth": {"htpasswd": {"path": "'$W'/htpasswd"}}}'
start_configured ANON '{"listen": "127.0.0.1:0", "root": "'$W'/ocireg-anon", '"$TLS"', "log_format": "off"}'
DIST_PORT=$(free_port)
cat > "$W/dist.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/distribution}}
auth:
  htpasswd: {realm: bench, path: $W/htpasswd}
http:
  addr: 127.0.0.1:$DIST_PORT
  secret: bench
  tls: {certificate: $W/server.pem, key: $W/server.key}
YML
docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
PID_DIST=$!; PIDS+=($!)
OCI="https://127.0.0.1:$PORT_OCI"
ANON="https://127.0.0.1:$PORT_ANON"
DIST="https://127.0.0.1:$DIST_PORT"
C="curl -s --cacert $W/ca.pem"
for u in "$OCI" "$ANON" "$DIST"; do
  for i in $(seq 200); do $C -o /dev/null "$u/v2/" && break; sleep 0.05; done
done

BLOB="$W/blob"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$BLOB"
BYTES=$(stat -c%s "$BLOB")

# push BASE REPO DIGEST -> seconds (POST, then PUT of the whole blob)
push() {
  local loc
  loc=$($C -o /dev/null -D - -H "$AUTH" -X POST "$1/v2/$2/blobs/uploads/" | tr -d '\r' |
    awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in /*) loc="$1$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
  $C -o /dev/null -w '%{http_code} %{time_total}\n' -H "$AUTH" -X PUT -T "$BLOB" \
    -H 'Content-Type: application/octet-stream' "${loc}digest=$3" > "$W/r"
  [ "$(cut -d' ' -f1 "$W/r")" = 201 ] || { echo "push to $1 answered $(cat "$W/r")" >&2; exit 1; }
  cut -d' ' -f2 "$W/r"
}

for run in $(seq "$RUNS"); do
  printf 'run %s' "$run" >> "$BLOB"  # a new blob each run
  d=sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)
  BYTES=$(stat -c%s "$BLOB")
  for s in OCI DIST; do
    sync; sleep 0.5
    push "${!s}" bench/big "$d" >> "$W/push.$s"
    sync; sleep 0.5
    $C -o /dev/null -H "$AUTH" -w '%{time_total}\n' "${!s}/v2/bench/big/blobs/$d" >> "$W/pull.$s"
  done
  echo "  run $run: push $(mbps "$BYTES" "$(tail -1 "$W/push.OCI")")/$(mbps "$BYTES" "$(tail -1 "$W/push.DIST")") MB/s," \
    "pull $(mbps "$BYTES" "$(tail -1 "$W/pull.OCI")")/$(mbps "$BYTES" "$(tail -1 "$W/pull.DIST")") MB/s (ocireg/Distribution)" >&2
done

# A small image for the request-rate workloads, in each server.
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$W/cfg"
CD=sha256:$(sha256sum "$W/cfg" | cut -d' ' -f1)
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[]}' \
  "$CD" "$(stat -c%s "$W/cfg")" > "$W/man"
for s in OCI ANON DIST; do
  BLOB="$W/cfg" push "${!s}" bench/img "$CD" >/dev/null
  code=$($C -o /dev/null -w '%{http_code}' -H "$AUTH" -X PUT --data-binary @"$W/man" \
    -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' "${!s}/v2/bench/img/manifests/latest")
  [ "$code" = 201 ] || { echo "manifest PUT to ${!s} answered $code" >&2; exit 1; }
done

ACCEPT='Accept: application/vnd.docker.distribution.manifest.v2+json'
for run in $(seq "$RUNS"); do
  for s in OCI ANON DIST; do
    sleep 0.5
    "$BIN/http-load" get "${!s}/v2/bench/img/manifests/latest" -c 64 -d "$DURATION" -H "$AUTH" -H "$ACCEPT" > "$W/mget.run"
    awk '{printf "%.0f\n", $4}' "$W/mget.run" >> "$W/mget.$s"
    awk '{print $8}' "$W/mget.run" >> "$W/mgetp99.$s"
    [ "$(awk '{print $10}' "$W/mget.run")" = 0 ] || echo "warning: $s manifest GET errors: $(cat "$W/mget.run")" >&2
    "$BIN/http-load" head "${!s}/v2/bench/img/blobs/$CD" -c 64 -d "$DURATION" -H "$AUTH" > "$W/head.run"
    awk '{printf "%.0f\n", $4}' "$W/head.run" >> "$W/head.$s"
    awk '{print $8}' "$W/head.run" >> "$W/headp99.$s"
  done
  echo "  run $run: manifest GET req/s $(tail -1 "$W/mget.OCI")/$(tail -1 "$W/mget.DIST") (anonymous TLS $(tail -1 "$W/mget.ANON"))," \
    "blob HEAD req/s $(tail -1 "$W/head.OCI")/$(tail -1 "$W/head.DIST") (ocireg/Distribution)" >&2
done

declare -A R
for s in OCI DIST; do
  R[push,$s]=$(mbps "$BYTES" "$(median < "$W/push.$s")")
  R[pull,$s]=$(mbps "$BYTES" "$(median < "$W/pull.$s")")
done
for s in OCI ANON DIST; do
  for m in mget mgetp99 head headp99; do R[$m,$s]=$(median < "$W/$m.$s"); done
done
AES=$(openssl speed -evp aes-128-gcm -seconds 2 -bytes 16384 2>/dev/null | awk '/^AES-128-GCM/ {sub(/k$/, "", $NF); printf "%.0f", $NF * 1000 / 1e6}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else if (a / b < 0.1) printf "%.4fx", a / b; else printf "%.2fx", a / b}'; }
row() { printf '| %-46s | %12s | %12s | %8s |\n' "$1" "$2" "$3" "$4"; }
echo
echo "Machine: openssl speed -evp aes-128-gcm (16 KiB blocks, one core): $AES MB/s"
echo "Both servers: HTTPS (TLS 1.3 for curl and http-load), htpasswd with bcrypt cost 10, Basic credentials on every request."
echo
row "workload" "ocireg" "Distribution" "ratio"
row "---" "---:" "---:" "---:"
row "TLS push ${SIZE_MIB} MiB, monolithic (MB/s)" "${R[push,OCI]}" "${R[push,DIST]}" "$(ratio "${R[push,OCI]}" "${R[push,DIST]}")"
row "TLS pull ${SIZE_MIB} MiB (MB/s)" "${R[pull,OCI]}" "${R[pull,DIST]}" "$(ratio "${R[pull,OCI]}" "${R[pull,DIST]}")"
row "authenticated manifest GET, 64 conns (req/s)" "${R[mget,OCI]}" "${R[mget,DIST]}" "$(ratio "${R[mget,OCI]}" "${R[mget,DIST]}")"
row "authenticated manifest GET p99 (ms, lower is better)" "${R[mgetp99,OCI]}" "${R[mgetp99,DIST]}" "$(ratio "${R[mgetp99,OCI]}" "${R[mgetp99,DIST]}")"
row "authenticated blob HEAD, 64 conns (req/s)" "${R[head,OCI]}" "${R[head,DIST]}" "$(ratio "${R[head,OCI]}" "${R[head,DIST]}")"
row "authenticated blob HEAD p99 (ms, lower is better)" "${R[headp99,OCI]}" "${R[headp99,DIST]}" "$(ratio "${R[headp99,OCI]}" "${R[headp99,DIST]}")"
row "ocireg anonymous manifest GET over TLS (req/s)" "${R[mget,ANON]}" "" ""
row "ocireg authenticated / anonymous manifest GET" "$(ratio "${R[mget,OCI]}" "${R[mget,ANON]}")" "" ""
row "ocireg anonymous blob HEAD over TLS (req/s)" "${R[head,ANON]}" "" ""
row "ocireg authenticated / anonymous blob HEAD" "$(ratio "${R[head,OCI]}" "${R[head,ANON]}")" "" ""

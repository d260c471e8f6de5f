#!/usr/bin/env bash
# ocireg with its records in PostgreSQL (config "database"), against a
# throwaway postgresql 15 (tests/pg/pg_lib.sh):
#   - start-up errors (one line, non-zero exit, no password), and a schema
#     newer than the binary refused;
#   - the conformance suite with every registry on PostgreSQL (a schema per
#     store);
#   - three replicas on S3 (a throwaway Ceph RGW) + PostgreSQL behind
#     Debian's nginx-light as a round-robin balancer: the conformance suite
#     through it (every registry of the suite three replicas); skopeo and docker
#     push and pull through it; a chunked upload whose requests land on
#     different replicas commits; kill -9 of the replica holding an upload
#     and the upload goes on through the others; a restarted replica
#     serves everything; one replica collects garbage while another asked
#     at the same time declines (503); a replica answers 503 while
#     PostgreSQL is down
#     and recovers when it is back.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$(cd "${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}" && pwd)"
export OCIB_BIN_DIR="$BIN"
source "$HERE/../interop/lib.sh"
source "$HERE/../s3/ceph_lib.sh"
source "$HERE/pg_lib.sh"
source "$HERE/nginx_lib.sh"
set +e  # every step is checked
NGINX_PID=""
DOCKERD=""
trap '[ -n "$DOCKERD" ] && stop_pid "$DOCKERD"; [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID"; cleanup; stop_pg; stop_ceph' EXIT
W="$WORK"
cd "$W" || exit 1

start_pg "$(mktemp -d /tmp/pg.XXXX)" || { fail "postgres did not start"; finish; exit 1; }
pass "postgresql up at port $PG_PORT"

db_config() {  # db_config FILE SCHEMA [PORT] [PASSWORD]: files + PostgreSQL
  cat >"$1" <<JSON
{"database": {"enabled": true, "host": "127.0.0.1", "port": ${3:-$PG_PORT}, "user": "ocib",
  "password": "${4:-}", "dbname": "postgres", "sslmode": "disable", "schema": "$2", "connecttimeout": 2}}
JSON
}

# --- start-up errors
db_config down.json s_down "$(free_port)" 'pw-s3cr3t'
if timeout 20 "$BIN/ocireg" serve --config down.json --listen 127.0.0.1:0 --root "$W/down" >/dev/null 2>down.err; then
  fail "started with no database"
else
  grep -q "database: cannot connect to PostgreSQL" down.err && ! grep -q "s3cr3t" down.err &&
    [ "$(wc -l <down.err)" -eq 1 ] && pass "no database: $(tail -1 down.err)" ||
    { fail "no-database message"; cat down.err; }
fi
echo '{"database": {"enabled": true, "user": "ocib", "dbname": "postgres", "schema": "Bad-Name"}}' >bad.json
"$BIN/ocireg" serve --config bad.json --listen 127.0.0.1:0 --root "$W/bad" >/dev/null 2>bad.err &&
  fail "a bad schema name was accepted" ||
  { grep -q 'database.schema' bad.err && pass "bad schema name: $(cat bad.err)" || { fail "schema message"; cat bad.err; }; }
echo '{"database": {"enabled": true, "user": "ocib", "dbname": "postgres", "sslmode": "sometimes"}}' >bad2.json
"$BIN/ocireg" serve --config bad2.json --listen 127.0.0.1:0 --root "$W/bad2" >/dev/null 2>bad2.err &&
  fail "a bad sslmode was accepted" ||
  { grep -q 'database.sslmode' bad2.err && pass "bad sslmode: $(cat bad2.err)" || { fail "sslmode message"; cat bad2.err; }; }

# --- migrations: applied once, and a newer schema is refused
db_config mig.json s_mig
start_registry mig --config "$W/mig.json"
[ -n "$REG_mig" ] && curl -sf "http://$REG_mig/v2/" >/dev/null && pass "ocireg on PostgreSQL starts (schema s_mig)" || fail "ocireg on PostgreSQL"
[ "$(psql_pg "SELECT string_agg(version::text, ',') FROM s_mig.ocib_schema_migrations")" = 1 ] &&
  pass "migration 1 recorded in s_mig.ocib_schema_migrations" || fail "migrations table"
stop_pid "$PID_mig"
psql_pg "INSERT INTO s_mig.ocib_schema_migrations (version) VALUES (99)" >/dev/null
if "$BIN/ocireg" serve --config mig.json --listen 127.0.0.1:0 --root "$W/mig/store" >/dev/null 2>newer.err; then
  fail "a newer database schema was accepted"
else
  grep -q "version 99, newer than this binary" newer.err && pass "newer schema refused: $(cat newer.err)" ||
    { fail "newer-schema message"; cat newer.err; }
fi

# --- the conformance suite, every registry on PostgreSQL
db_config conf.json "@UNIQUE_ID@"
OCIB_TEST_CONFIG="$W/conf.json" "$BIN/registry_conformance_test" >suite.out 2>&1
rc=$?
[ $rc -eq 0 ] && pass "conformance suite on PostgreSQL ($(grep -ao 'test cases:.*' suite.out | head -1))" ||
  { fail "conformance suite on PostgreSQL"; grep -a -B3 -A8 "ERROR" suite.out | head -60; }
n=$(psql_pg "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ocib_index'")
[ "${n:-0}" -gt 5 ] && pass "the suite's registries used $n schemas" || fail "suite schemas: ${n:-none}"

# --- three replicas on S3 + PostgreSQL behind nginx
start_ceph "$(mktemp -d /tmp/cp.XXXX)" 4096 || { fail "ceph did not start"; finish; exit 1; }

# The conformance suite again, each registry now three replicas (S3 +
# PostgreSQL) behind nginx; left out: the cases that write raw bytes on a
# socket (nginx answers malformed requests itself) and one that reads one
# process's access log.
cat >conf3.json <<JSON
{"database": {"enabled": true, "host": "127.0.0.1", "port": $PG_PORT, "user": "ocib", "dbname": "postgres",
  "sslmode": "disable", "schema": "@UNIQUE_ID@"},
 "storage": {"s3": {"regionendpoint": "$S3_ENDPOINT", "bucket": "conf3", "rootdirectory": "/@UNIQUE_ID@",
  "accesskey": "$S3_ACCESS_KEY", "secretkey": "$S3_SECRET_KEY", "chunksize": 5242880}}}
JSON
OCIB_TEST_REPLICAS=3 OCIB_TEST_CONFIG="$W/conf3.json" "$BIN/registry_conformance_test" \
  --test-suite-exclude=raw-socket,one-process >suite3.out 2>&1
rc=$?
[ $rc -eq 0 ] && pass "conformance suite through nginx, 3 replicas each ($(grep -ao 'test cases:.*' suite3.out | head -1))" ||
  { fail "conformance suite through nginx"; grep -a -B3 -A8 "ERROR" suite3.out | head -60; }
# A webhook receiver (tests/ops/webhook_receiver.py): the replicas share
# one notification queue, and each event should be sent once.
RP=$(free_port)
mkdir -p recv && echo ok > recv/mode
/usr/bin/python3 "$HERE/../ops/webhook_receiver.py" "$RP" "$W/recv" > recv.log 2>&1 &
PIDS+=($!)
for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$RP/" && break; sleep 0.05; done
cat >rep.json <<JSON
{"database": {"enabled": true, "host": "127.0.0.1", "port": $PG_PORT, "user": "ocib", "dbname": "postgres",
  "sslmode": "disable", "schema": "shared", "pool": {"maxopen": 8}},
 "notifications": {"endpoints": [{"name": "main", "url": "http://127.0.0.1:$RP/main", "actions": ["push"],
  "repositories": ["team/app"], "backoff": "1s"}]},
 "storage": {"s3": {"regionendpoint": "$S3_ENDPOINT", "bucket": "shared", "rootdirectory": "/r",
  "accesskey": "$S3_ACCESS_KEY", "secretkey": "$S3_SECRET_KEY", "chunksize": 5242880}}}
JSON
declare -A RPORT
start_replica() {  # start_replica N: on a fixed port (a restart keeps it)
  local n=$1
  [ -n "${RPORT[$n]:-}" ] || RPORT[$n]=$(free_port)
  mkdir -p "$W/rep$n"
  # A paused sweep (per repository) makes a collection long enough to
  # overlap another replica's.
  OCIREG_GC_TEST_SWEEP_DELAY_MS=400 \
    "$BIN/ocireg" serve --config rep.json --listen "127.0.0.1:${RPORT[$n]}" --root "$W/rep$n/store" \
    >>"$W/rep$n/access.log" 2>>"$W/rep$n/server.log" &
  eval "RPID_$n=$!"
  PIDS+=("$!")
  local i
  for i in $(seq 200); do curl -sf "http://127.0.0.1:${RPORT[$n]}/v2/" >/dev/null && return 0; sleep 0.05; done
  fail "replica $n did not start"; tail -5 "$W/rep$n/server.log"
}
for n in 1 2 3; do start_replica "$n"; done
NPORT=$(free_port)
start_nginx_lb "$W/nginx" "$NPORT" "${RPORT[1]}" "${RPORT[2]}" "${RPORT[3]}"
L="127.0.0.1:$NPORT"
curl -sf "http://$L/v2/" >/dev/null && pass "nginx round-robins over 3 replicas at $L" || fail "nginx not up"

# skopeo through the balancer: a 12 MiB layer (three 5 MiB parts)
mkdir -p big/rootfs
head -c $((12 * 1024 * 1024 + 777)) /dev/urandom > big/rootfs/data
tar -C big/rootfs -cf big/layer.tar . && gzip -1 -n -c big/layer.tar > big/layer.tgz
mkdir -p img/blobs/sha256
lh=$(sha big/layer.tgz); cp big/layer.tgz img/blobs/sha256/$lh
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$(sha big/layer.tar)" > cfg.json
ch=$(sha cfg.json); cp cfg.json img/blobs/sha256/$ch
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$ch" "$(stat -c%s cfg.json)" "$lh" "$(stat -c%s big/layer.tgz)" > man.json
mh=$(sha man.json); cp man.json img/blobs/sha256/$mh
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$mh" "$(stat -c%s man.json)" > img/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > img/oci-layout
S="skopeo --insecure-policy"
check "skopeo pushes through nginx" $S copy --dest-tls-verify=false oci:img:v1 "docker://$L/team/app:v1"
check "skopeo pulls through nginx" $S copy --src-tls-verify=false "docker://$L/team/app:v1" oci:back:v1
cmp -s img/blobs/sha256/$lh back/blobs/sha256/$lh && pass "pulled layer byte-identical" || fail "pulled layer differs"
ok=0
for n in 1 2 3; do
  d=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:${RPORT[$n]}/v2/team/app/manifests/v1" | sha256sum | cut -d' ' -f1)
  [ "$d" = "$mh" ] && ok=$((ok + 1))
done
[ $ok -eq 3 ] && pass "each replica serves the tag pushed through the balancer" || fail "only $ok of 3 replicas serve the tag"
# notifications: the push of team/app:v1 (config, layer, manifest) reached
# the receiver once each, though three replicas share the queue and each
# runs a deliverer
for i in $(seq 100); do
  [ -f recv/main.events ] && [ "$(wc -l < recv/main.events)" -ge 3 ] && break; sleep 0.1
done
sleep 1.5  # room for a duplicate to arrive
read -r lines ids < <(/usr/bin/python3 -c 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
print(len(ev), len({e["id"] for e in ev}))' recv/main.events 2>/dev/null)
[ "${ids:-0}" -ge 3 ] && [ "$lines" = "$ids" ] &&
  pass "webhooks: $ids push events of team/app, each delivered once by the 3 replicas" ||
  fail "webhooks: ${lines:-0} deliveries of ${ids:-0} events"

served=0
for n in 1 2 3; do grep -q "/v2/team/app/" "$W/rep$n/access.log" && served=$((served + 1)); done
[ $served -eq 3 ] && pass "the push's requests reached all 3 replicas" || fail "requests reached $served replicas"

# a chunked upload whose requests go to different replicas, across a kill -9
head -c $((11 * 1024 * 1024)) /dev/urandom > chunked.bin
CD="sha256:$(sha chunked.bin)"
head -c $((6 * 1024 * 1024)) chunked.bin > c1; tail -c +$((6 * 1024 * 1024 + 1)) chunked.bin | head -c $((3 * 1024 * 1024)) > c2
tail -c +$((9 * 1024 * 1024 + 1)) chunked.bin > c3
r1="http://127.0.0.1:${RPORT[1]}" r2="http://127.0.0.1:${RPORT[2]}" r3="http://127.0.0.1:${RPORT[3]}"
loc=$(curl -s -D - -o /dev/null -X POST "$r1/v2/team/chunked/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
loc=${loc#http*://*/}; loc="/${loc#/}"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
  -H "Content-Range: 0-$((6 * 1024 * 1024 - 1))" --data-binary @c1 "$r2$loc")
[ "$code" = 202 ] && pass "POST on replica 1, first PATCH on replica 2: 202" || fail "PATCH on replica 2: $code"
kill -9 "$RPID_2"; wait "$RPID_2" 2>/dev/null
range=$(curl -s -D - -o /dev/null "$r3$loc" | tr -d '\r' | awk -F': ' 'tolower($1)=="range"{print $2}')
[ "$range" = "0-$((6 * 1024 * 1024 - 1))" ] && pass "after kill -9 of replica 2, replica 3 reports Range $range" ||
  fail "upload status on replica 3: '$range'"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
  -H "Content-Range: $((6 * 1024 * 1024))-$((9 * 1024 * 1024 - 1))" --data-binary @c2 "$r3$loc")
[ "$code" = 202 ] && pass "second PATCH on replica 3: 202" || fail "PATCH on replica 3: $code"
sep='?'; case "$loc" in *\?*) sep='&';; esac
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
  --data-binary @c3 "http://$L$loc${sep}digest=$CD")
[ "$code" = 201 ] && pass "closing PUT with the last chunk through nginx: 201" || fail "closing PUT: $code"
curl -s "$r1/v2/team/chunked/blobs/$CD" -o chunked.back
cmp -s chunked.bin chunked.back && pass "replica 1 serves the 11 MiB blob byte-identical" || fail "chunked blob differs"

# kill -9 mid-push: the replica receiving the layer's bytes is killed
# while they flow (found by its sockets' received bytes), and skopeo's
# retries complete the push through the other replicas.
start_replica 2
head -c $((96 * 1024 * 1024)) /dev/urandom > big/rootfs/data
tar -C big/rootfs -cf big/layer2.tar . && gzip -1 -n -c big/layer2.tar > big/layer2.tgz
rm -rf img2 && cp -r img img2
l2=$(sha big/layer2.tgz); cp big/layer2.tgz img2/blobs/sha256/$l2
sed "s/$lh/$l2/; s/\"size\":$(stat -c%s big/layer.tgz)}/\"size\":$(stat -c%s big/layer2.tgz)}/" man.json > man2.json
m2=$(sha man2.json); cp man2.json img2/blobs/sha256/$m2
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v2"}}]}' \
  "$m2" "$(stat -c%s man2.json)" > img2/index.json
receiving_replica() {  # the replica with a connection that has received > 4 MiB
  local n
  for n in 1 2 3; do
    ss -Htin state established "sport = :${RPORT[$n]}" 2>/dev/null |
      grep -o 'bytes_received:[0-9]*' | cut -d: -f2 |
      awk -v n="$n" '$1 > 4194304 {print n; exit}'
  done | head -1
}
killed=""
$S copy --retry-times 3 --dest-tls-verify=false oci:img2:v2 "docker://$L/team/app:v2" >push2.out 2>&1 &
push=$!
for i in $(seq 500); do
  kill -0 "$push" 2>/dev/null || break
  killed=$(receiving_replica)
  if [ -n "$killed" ]; then eval "kill -9 \$RPID_$killed"; break; fi
  sleep 0.01
done
wait "$push"
prc=$?
if [ -n "$killed" ]; then
  eval "wait \$RPID_$killed"
  rc=$?
  [ "$rc" = 137 ] && pass "replica $killed, receiving the layer, was killed mid-push (exit $rc)" ||
    fail "replica $killed exit $rc"
else
  fail "no replica was seen receiving the layer"
fi
[ $prc -eq 0 ] && pass "skopeo's retries completed the push through the other replicas" ||
  { fail "push across the kill: exit $prc"; tail -5 push2.out; }
check "the image pushed across the kill pulls back" $S copy --src-tls-verify=false "docker://$L/team/app:v2" oci:back2:v2
cmp -s big/layer2.tgz back2/blobs/sha256/$l2 && pass "its 96 MiB layer is byte-identical" || fail "layer after kill differs"
[ -n "$killed" ] && start_replica "$killed"

# a restarted replica loses nothing: replica 1, stopped by kill -9 here
kill -9 "$RPID_1"; wait "$RPID_1" 2>/dev/null
start_replica 1
code=$(curl -s -o restarted.bin -w '%{http_code}' "$r1/v2/team/chunked/blobs/$CD")
[ "$code" = 200 ] && cmp -s restarted.bin chunked.bin && pass "restarted replica 1 serves the chunked blob" ||
  fail "restarted replica: $code"
tags=$(curl -s "$r1/v2/team/app/tags/list" | jq -c .tags)
[ "$tags" = '["v1","v2"]' ] && pass "restarted replica 1 lists tags $tags" || fail "tags on restarted replica: $tags"

# docker through the balancer
D="$W/docker"
mkdir -p "$D"
dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
  --pidfile "$D/docker.pid" --iptables=false --ip6tables=false --bridge=none \
  --storage-driver overlay2 --insecure-registry "$L" >"$D/dockerd.log" 2>&1 &
DOCKERD=$!
DK="docker -H unix://$D/docker.sock"
for i in $(seq 100); do $DK info >/dev/null 2>&1 && break; sleep 0.2; done
seed_registry "$L" pgrep
check "docker pull through nginx" $DK pull "$L/library/busybox:latest"
$DK tag "$L/library/busybox:latest" "$L/team/dockerpushed:v1"
check "docker push through nginx" $DK push "$L/team/dockerpushed:v1"
check "docker pull of what it pushed, after rmi" \
  bash -c "$DK rmi $L/team/dockerpushed:v1 >/dev/null && $DK pull $L/team/dockerpushed:v1"
stop_pid "$DOCKERD"; DOCKERD=""

# GC with three replicas: one collects, another asked meanwhile declines
curl -s -o gc1.json -w '%{http_code}' -X POST "$r1/admin/gc?min_age=0s" >gc1.code &
gc1=$!
sleep 0.3
code=$(curl -s -o gc2.json -w '%{http_code}' -X POST "$r2/admin/gc?min_age=0s")
wait "$gc1"
[ "$code" = 503 ] && jq -e '.errors[0].code == "UNAVAILABLE"' gc2.json >/dev/null &&
  pass "GC on replica 2 while replica 1 collects: 503 UNAVAILABLE" || { fail "concurrent GC: $code"; cat gc2.json; }
[ "$(cat gc1.code)" = 200 ] && jq -e '.blobs_deleted >= 1' gc1.json >/dev/null &&
  pass "replica 1's collection: $(jq -c '{blobs_deleted,bytes_reclaimed}' gc1.json)" || { fail "GC on replica 1: $(cat gc1.code)"; cat gc1.json; }
grep -q "gc: skipped: another process is collecting" "$W/rep2/server.log" && pass "replica 2 logged the skip" ||
  fail "no skip in replica 2's log"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$r2/admin/gc?min_age=0s")
[ "$code" = 200 ] && pass "once it ended, replica 2 collects: 200" || fail "GC on replica 2 afterwards: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$r3/v2/team/chunked/blobs/$CD")
[ "$code" = 404 ] && pass "the unreferenced chunked blob is gone on replica 3" || fail "collected blob on replica 3: $code"
curl -s "$r3/v2/team/app/blobs/sha256:$l2" -o kept.bin
cmp -s kept.bin big/layer2.tgz && pass "a tagged image's layer is kept" || fail "tagged layer lost"

# PostgreSQL down: 503 with a JSON error and no address; back: 200
kill -QUIT "$PG_PID"; wait "$PG_PID" 2>/dev/null
code=$(curl -s -o down.json -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$r3/v2/team/app/manifests/v1")
[ "$code" = 503 ] && jq -e '.errors[0].code == "UNAVAILABLE"' down.json >/dev/null && ! grep -q "127.0.0.1\|$PG_PORT" down.json &&
  pass "PostgreSQL down: 503 UNAVAILABLE, no address in the body" || { fail "database down: $code"; cat down.json; }
setpriv_as=()
[ "$(id -u)" -eq 0 ] && setpriv_as=(setpriv --reuid postgres --regid postgres --clear-groups --)
"${setpriv_as[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$PG_DIR" -c fsync=off -c full_page_writes=off -c max_connections=200 \
  >>"$PG_DIR/server.log" 2>&1 &
PG_PID=$!
for i in $(seq 100); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
code=$(curl -s -o back.json -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$r3/v2/team/app/manifests/v1")
[ "$code" = 200 ] && [ "$(sha back.json)" = "$mh" ] && pass "PostgreSQL back: the same replica answers 200" ||
  fail "after PostgreSQL restart: $code"
# Every pooled connection died with the server: none of them is used again.
codes=""
for n in 1 2 3; do
  for i in $(seq 12); do
    codes+=" $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${RPORT[$n]}/v2/team/app/tags/list")"
  done
done
[ -z "$(echo "$codes" | tr ' ' '\n' | grep -v '^200$' | grep -v '^$')" ] &&
  pass "after the restart, 36 requests over the 3 replicas all answer 200" || fail "after the restart:$codes"
finish

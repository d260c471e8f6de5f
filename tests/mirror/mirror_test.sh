#!/usr/bin/env bash
# ocireg as a pull-through mirror, with real clients: skopeo and curl
# against a mirror in front of a second ocireg and in front of Debian's
# Distribution 2.8; a real Docker engine with --registry-mirror (pull with
# no internet; a second, empty daemon pulls while the upstream is stopped);
# tag freshness; twenty concurrent pulls of one uncached 256 MiB blob
# sharing one upstream GET; pushes refused in mirrored namespaces and
# accepted elsewhere; clear errors when the upstream is gone.
source "$(dirname "$0")/../interop/lib.sh"
set +e
S="skopeo --insecure-policy"
manifest_digest() {  # manifest_digest HOST/REPO:TAG -> sha256:... (the served bytes)
  echo "sha256:$($S inspect --tls-verify=false --raw "docker://$1" 2>/dev/null | sha256sum | cut -d' ' -f1)"
}
flush() { sleep 0.3; }  # the access log is flushed every 100 ms
# upstream_blob REPO MIB: pushes MIB MiB of random bytes to the upstream's
# REPO (one monolithic POST); sets BLOB to its digest.
upstream_blob() {
  head -c $(($2 << 20)) /dev/urandom > "$WORK/blob.tmp"
  BLOB="sha256:$(sha256sum "$WORK/blob.tmp" | cut -d' ' -f1)"
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "@$WORK/blob.tmp" "http://$REG_up/v2/$1/blobs/uploads/?digest=$BLOB")
  rm -f "$WORK/blob.tmp"
  [ "$code" = 201 ] || fail "push of a $2 MiB blob to the upstream answered $code"
}

# --- upstream: an ocireg holding library/busybox and a multi-platform index
start_registry up
seed_registry "$REG_up" mirror
BUSYBOX="sha256:$DIGEST"
MIR_DEBUG=127.0.0.1:$(free_port)
cat > "$WORK/mirror.json" <<JSON
{"proxy": {"upstreams": [{"url": "http://$REG_up", "tag_freshness_seconds": 3, "timeout_seconds": 5}]},
 "debug": {"listen": "$MIR_DEBUG"}}
JSON
start_registry mir --config "$WORK/mirror.json"
M=$REG_mir

# --- pulls through the mirror
[ "$(manifest_digest "$M/library/busybox:latest")" = "$BUSYBOX" ] && pass "manifest by tag through the mirror (miss)" ||
  fail "manifest through mirror"
check "skopeo copy of library/busybox through the mirror" \
  $S copy --src-tls-verify=false "docker://$M/library/busybox:latest" "oci:$WORK/pulled:1"
flush
grep -q '"GET /v2/library/busybox/manifests/latest" 200 .* cache=miss' "$REGLOG_mir" && pass "first manifest GET logged as a miss" ||
  fail "miss not logged"
grep -q '"GET /v2/library/busybox/blobs/sha256:[0-9a-f]*" 200 .* cache=miss' "$REGLOG_mir" && pass "first blob GET logged as a miss" ||
  fail "blob miss not logged"
check "the same copy again" $S copy --src-tls-verify=false "docker://$M/library/busybox:latest" "oci:$WORK/pulled2:1"
flush
grep -q '"GET /v2/library/busybox/blobs/sha256:[0-9a-f]*" 200 .* cache=hit' "$REGLOG_mir" && pass "second blob GET is a cache hit" ||
  fail "no blob hit"
[ "$(manifest_digest "$M/docker.io/library/busybox:latest")" = "$BUSYBOX" ] &&
  pass "the docker.io/ prefix reaches the same cache" || fail "prefix form"
ct=$(curl -s -o "$WORK/ns.json" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$M/v2/library/busybox/manifests/latest?ns=docker.io")
[ "$ct" = 200 ] && [ "sha256:$(sha256sum < "$WORK/ns.json" | cut -d' ' -f1)" = "$BUSYBOX" ] &&
  pass "containerd's ?ns=docker.io reaches the upstream" || fail "ns parameter ($ct)"
check "an OCI index through the mirror (skopeo --all)" \
  $S copy --all --src-tls-verify=false "docker://$M/library/multi:oci" "oci:$WORK/multi:1"
curl -s "http://$M/v2/library/busybox/tags/list" | jq -e '.tags | index("latest")' >/dev/null &&
  pass "tag list of a mirrored repository comes from upstream" || fail "tags list"
curl -s -D "$WORK/tags.h" -o "$WORK/tags.json" "http://$M/v2/library/multi/tags/list?n=1"
jq -e '.tags == ["list"]' "$WORK/tags.json" >/dev/null && grep -qi '^link: </v2/library/multi/tags/list?last=list&n=1>' "$WORK/tags.h" &&
  pass "mirrored tag lists paginate with n and Link" || { fail "mirrored tag pagination"; cat "$WORK/tags.h" "$WORK/tags.json"; }

# --- referrers of mirrored manifests: an artifact pushed upstream with a
# subject and pulled through the mirror is in the mirror's referrers index
printf '{}' > "$WORK/empty.json"
E="sha256:$(sha256sum "$WORK/empty.json" | cut -d' ' -f1)"
curl -s -o /dev/null -X POST --data-binary @"$WORK/empty.json" "http://$REG_up/v2/library/busybox/blobs/uploads/?digest=$E"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
curl -s -D "$WORK/subj.h" -o "$WORK/subj.json" -H "$ACCEPT" "http://$REG_up/v2/library/busybox/manifests/$BUSYBOX"
subj_type=$(tr -d '\r' < "$WORK/subj.h" | awk -F': ' 'tolower($1)=="content-type"{print $2}')
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],"subject":{"mediaType":"%s","digest":"%s","size":%s}}' \
  "$E" "$E" "$subj_type" "$BUSYBOX" "$(wc -c < "$WORK/subj.json")" > "$WORK/art.json"
ART="sha256:$(sha256sum "$WORK/art.json" | cut -d' ' -f1)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @"$WORK/art.json" "http://$REG_up/v2/library/busybox/manifests/$ART")
[ "$code" = 201 ] || fail "artifact push upstream answered $code"
curl -s -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$M/v2/library/busybox/manifests/$ART"
curl -s "http://$M/v2/library/busybox/referrers/$BUSYBOX" > "$WORK/refs.json"
jq -e --arg d "$ART" '.manifests | map(select(.digest == $d and .artifactType == "application/vnd.example.sig")) | length == 1' "$WORK/refs.json" >/dev/null &&
  pass "a mirrored manifest with a subject is listed by the mirror's referrers API" || { fail "mirrored referrers"; cat "$WORK/refs.json"; }

# --- pushes
code=$(curl -s -o "$WORK/push.json" -w '%{http_code}' -X POST "http://$M/v2/library/busybox/blobs/uploads/")
[ "$code" = 405 ] && jq -e '.errors[0].code == "UNSUPPORTED"' "$WORK/push.json" >/dev/null &&
  grep -q "http://$REG_up" "$WORK/push.json" && pass "push into a mirrored namespace: 405 UNSUPPORTED naming the upstream" ||
  { fail "mirrored push answered $code"; cat "$WORK/push.json"; }
check_fails "skopeo copy into a mirrored namespace fails" \
  $S copy --dest-tls-verify=false "oci:$WORK/pulled:1" "docker://$M/library/mine:1"
check "push to a local namespace on the same server works" \
  $S copy --dest-tls-verify=false "oci:$WORK/pulled:1" "docker://$M/team.local/app:1"
[ "$(manifest_digest "$M/team.local/app:1")" = "$BUSYBOX" ] && pass "the local image pulls back" || fail "local pull"

# --- tag moved upstream: cached until the freshness interval passes
make_layout "$WORK/moved" v1 mirror-moved
$S copy --dest-tls-verify=false "oci:$WORK/moved:v1" "docker://$REG_up/library/busybox:latest" >/dev/null 2>&1
MOVED=$(manifest_digest "$REG_up/library/busybox:latest")
[ "$MOVED" != "$BUSYBOX" ] || fail "upstream tag did not move"
[ "$(manifest_digest "$M/library/busybox:latest")" = "$BUSYBOX" ] &&
  pass "moved tag: the mirror serves its cached digest within the interval" || fail "stale tag not served from cache"
sleep 3.5
[ "$(manifest_digest "$M/library/busybox:latest")" = "$MOVED" ] &&
  pass "moved tag: after the interval the mirror serves the new digest" || fail "new digest not fetched"
$S copy --dest-tls-verify=false "oci:$WORK/pulled:1" "docker://$REG_up/library/busybox:latest" >/dev/null 2>&1  # back

# --- twenty concurrent pulls of one uncached 256 MiB blob
upstream_blob library/big 256; BIG=$BLOB
CURLS=()
for i in $(seq 20); do
  (curl -s "http://$M/v2/library/big/blobs/$BIG" | sha256sum | cut -d' ' -f1 > "$WORK/big.$i") &
  CURLS+=($!)
done
wait "${CURLS[@]}"  # not a bare wait: the registries are children too
ok=0
for i in $(seq 20); do [ "sha256:$(cat "$WORK/big.$i")" = "$BIG" ] && ok=$((ok + 1)); done
[ "$ok" = 20 ] && pass "20 concurrent pulls of an uncached 256 MiB blob: identical, verified bytes" || fail "only $ok of 20 got the blob"
flush
gets=$(grep -c "\"GET /v2/library/big/blobs/$BIG\"" "$REGLOG_up")
[ "$gets" = 1 ] && pass "the upstream saw exactly one GET for it" || fail "the upstream saw $gets GETs"

# --- a client that leaves early does not stop the fetch for the others
upstream_blob library/mid 64; MID=$BLOB
curl -s "http://$M/v2/library/mid/blobs/$MID" | head -c 100000 > /dev/null  # hangs up after 100 kB
got=$(curl -s "http://$M/v2/library/mid/blobs/$MID" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$MID" ] && pass "after a client hung up mid-blob, the next one gets verified bytes" || fail "blob after hang-up"
flush
gets=$(grep -c "\"GET /v2/library/mid/blobs/$MID\"" "$REGLOG_up")
[ "$gets" = 1 ] && pass "the hang-up did not abort the shared upstream fetch (one GET)" || fail "upstream saw $gets GETs after a hang-up"

# --- an upstream serving bytes that do not match their digest: the
# client's transfer fails and the mirror stores nothing
upstream_blob library/bad 4; BAD=$BLOB
h=${BAD#sha256:}
f="$WORK/up/store/blobs/sha256/${h:0:2}/$h"
if [ -f "$f" ]; then
  head -c $((4 << 20)) /dev/zero > "$f"
  if curl -sf -o "$WORK/bad.out" "http://$M/v2/library/bad/blobs/$BAD"; then
    fail "a blob with wrong bytes came through the mirror complete"
  else
    pass "a blob with wrong bytes: the client's transfer fails"
  fi
  sleep 0.2
  [ ! -e "$WORK/mir/store/blobs/sha256/${h:0:2}/$h" ] && pass "a blob with wrong bytes is not stored by the mirror" ||
    fail "the mirror stored a bad blob"
else
  fail "could not find the upstream's blob file to corrupt"
fi

# --- a real Docker engine with --registry-mirror
start_dockerd() {  # start_dockerd NAME -> sets DK (the client command)
  local d="$WORK/$1"
  mkdir -p "$d"
  dockerd --data-root "$d/data" --exec-root "$d/exec" -H "unix://$d/docker.sock" --pidfile "$d/docker.pid" \
    --iptables=false --ip6tables=false --bridge=none --storage-driver overlay2 \
    --registry-mirror "http://$M" >"$d/dockerd.log" 2>&1 &
  DOCKERDS+=($!)
  DK="docker -H unix://$d/docker.sock"
  local i; for i in $(seq 100); do $DK info >/dev/null 2>&1 && break; sleep 0.2; done
}
DOCKERDS=()
trap 'for p in "${DOCKERDS[@]}"; do stop_pid "$p"; done; cleanup' EXIT
if command -v dockerd >/dev/null; then
  start_dockerd d1
  check "docker pull busybox through --registry-mirror, no internet" $DK pull busybox
  check "the pulled busybox runs" bash -c "$DK run --rm --network none busybox echo via-mirror | grep -qx via-mirror"
  stop_pid "$PID_up"
  start_dockerd d2
  check "a second, empty daemon pulls busybox from the mirror while the upstream is stopped" $DK pull busybox
else
  fail "dockerd not installed"
  stop_pid "$PID_up"
fi

# --- upstream stopped (and the tag older than its freshness interval, so
# the mirror has to try upstream first)
sleep 3.5
[ "$(manifest_digest "$M/library/busybox:latest")" = "$BUSYBOX" ] && pass "upstream down: a cached tag still pulls" ||
  fail "cached tag with upstream down"
check "upstream down: a cached digest still pulls" \
  $S copy --src-tls-verify=false "docker://$M/library/busybox@$BUSYBOX" "oci:$WORK/bydigest:1"
code=$(curl -s -o "$WORK/down.json" -w '%{http_code}' "http://$M/v2/library/nothere/manifests/latest")
[ "$code" = 503 ] && grep -q "upstream http://$REG_up" "$WORK/down.json" &&
  pass "upstream down: an uncached image fails with 503 naming the upstream" || { fail "uncached with upstream down: $code"; cat "$WORK/down.json"; }
curl -s "http://$M/v2/library/busybox/tags/list" | jq -e '.tags | index("latest")' >/dev/null &&
  pass "upstream down: the tag list falls back to the cached tags" || fail "tags with upstream down"
flush
grep -q 'cache=stale' "$REGLOG_mir" && pass "serving from cache while upstream is down is logged" || fail "stale not logged"

# The counters, per upstream, at the metrics endpoint (and at shutdown).
curl -s "http://$MIR_DEBUG/metrics" > "$WORK/mirror.prom"
metric() { awk -v m="$1" '$1 == m {print $2}' "$WORK/mirror.prom"; }
for o in hit miss stale; do
  v=$(metric "ocireg_mirror_requests_total{upstream=\"docker.io\",outcome=\"$o\"}")
  [ "${v:-0}" -ge 1 ] 2>/dev/null && pass "metrics: mirror $o count per upstream ($v)" || fail "metrics: mirror $o: ${v:-none}"
done
v=$(metric 'ocireg_mirror_upstream_errors_total{upstream="docker.io"}')
[ "${v:-0}" -ge 1 ] 2>/dev/null && pass "metrics: upstream errors ($v)" || fail "metrics: upstream errors: ${v:-none}"
v=$(metric 'ocireg_mirror_upstream_request_duration_seconds_count{upstream="docker.io"}')
[ "${v:-0}" -ge 1 ] 2>/dev/null && pass "metrics: upstream latency observed ($v requests)" || fail "metrics: upstream latency: ${v:-none}"
stop_pid "$PID_mir"
grep -E 'mirror: [1-9][0-9]* hits, [1-9][0-9]* misses, [1-9][0-9]* upstream errors' "$WORK/mir/server.log" >/dev/null &&
  pass "hit, miss and upstream-error counts are kept" || { fail "mirror counters"; cat "$WORK/mir/server.log"; }

# --- in front of Distribution 2.8
if command -v docker-registry >/dev/null; then
  DP=$(free_port)
  printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s/dist\nhttp:\n  addr: 127.0.0.1:%s\n' "$WORK" "$DP" > "$WORK/dist.yml"
  docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do curl -sf "http://127.0.0.1:$DP/v2/" >/dev/null && break; sleep 0.05; done
  $S copy --dest-tls-verify=false "oci:$WORK/pulled:1" "docker://127.0.0.1:$DP/library/busybox:latest" >/dev/null 2>&1
  start_registry mir2 --mirror "http://127.0.0.1:$DP"
  [ "$(manifest_digest "$REG_mir2/library/busybox:latest")" = "$BUSYBOX" ] &&
    pass "mirror in front of Distribution: same digest" || fail "Distribution upstream manifest"
  check "mirror in front of Distribution: skopeo copy" \
    $S copy --src-tls-verify=false "docker://$REG_mir2/library/busybox:latest" "oci:$WORK/fromdist:1"
  # An upstream that demands credentials: inline, or from a docker-style
  # config file; without them the error says so.
  AP=$(free_port)
  htpasswd -Bbn alice s3cret > "$WORK/htpasswd" 2>/dev/null
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/dist\nauth:\n  htpasswd:\n    realm: test\n    path: %s/htpasswd\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$WORK" "$WORK" "$AP" > "$WORK/auth.yml"
  docker-registry serve "$WORK/auth.yml" >"$WORK/auth.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AP/v2/")" = 401 ] && break; sleep 0.05; done
  printf '{"proxy":{"upstreams":[{"url":"http://127.0.0.1:%s","username":"alice","password":"s3cret"}]}}\n' "$AP" > "$WORK/inline.json"
  start_registry mir3 --config "$WORK/inline.json"
  [ "$(manifest_digest "$REG_mir3/library/busybox:latest")" = "$BUSYBOX" ] &&
    pass "upstream with Basic auth: inline credentials" || fail "inline credentials"
  printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$AP" "$(printf alice:s3cret | base64)" > "$WORK/creds.json"
  printf '{"proxy":{"upstreams":[{"url":"http://127.0.0.1:%s","credentials_file":"%s"}]}}\n' "$AP" "$WORK/creds.json" > "$WORK/file.json"
  start_registry mir4 --config "$WORK/file.json"
  check "upstream with Basic auth: credentials from a docker config file" \
    $S copy --src-tls-verify=false "docker://$REG_mir4/library/busybox:latest" "oci:$WORK/authed:1"
  start_registry mir5 --mirror "http://127.0.0.1:$AP"
  code=$(curl -s -o "$WORK/noauth.json" -w '%{http_code}' "http://$REG_mir5/v2/library/busybox/manifests/latest")
  [ "$code" != 200 ] && grep -qi "authentication required" "$WORK/noauth.json" &&
    pass "upstream with auth and no credentials: a clear error" || { fail "no credentials: $code"; cat "$WORK/noauth.json"; }
else
  fail "docker-registry not installed"
fi

finish

#!/usr/bin/env bash
# ocireg with blob bytes on S3 (storage.s3) against a throwaway Ceph RGW
# (tests/s3/ceph_lib.sh): the conformance suite, skopeo push and pull of
# an image with a layer of several segments, a chunked upload of small
# PATCHes across a kill -9 of the registry, ranged reads, a bad digest,
# a cancelled upload and GC, each checked against the bucket's objects
# (radosgw-admin); bad credentials and an unreachable endpoint at start;
# and the registry's answers while the object store is down.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$(cd "${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}" && pwd)"
export OCIB_BIN_DIR="$BIN"
source "$HERE/../interop/lib.sh"
source "$HERE/ceph_lib.sh"
set +e  # every step is checked
trap 'stop_ceph; cleanup' EXIT
W="$WORK"
cd "$W" || exit 1

start_ceph "$(mktemp -d /tmp/cr.XXXX)" 4096 || { fail "ceph did not start"; finish; exit 1; }
pass "ceph (mon, memstore osd, radosgw) up at $S3_ENDPOINT"

objects() {  # objects BUCKET: the bucket's object names, one a line
  radosgw-admin -c "$CEPH_DIR/ceph.conf" bucket list --bucket="$1" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; [print(o["name"]) for o in json.load(sys.stdin)]'
}
s3_config() {  # s3_config FILE BUCKET PREFIX [ACCESS SECRET ENDPOINT]
  cat >"$1" <<JSON
{"storage": {"s3": {"regionendpoint": "${6:-$S3_ENDPOINT}", "bucket": "$2", "rootdirectory": "$3",
  "accesskey": "${4:-$S3_ACCESS_KEY}", "secretkey": "${5:-$S3_SECRET_KEY}", "chunksize": 5242880}}}
JSON
}

# --- start-up errors: one line, non-zero exit, no secret in it
s3_config bad.json b1 /x "$S3_ACCESS_KEY" wrong-secret
if "$BIN/ocireg" serve --config bad.json --listen 127.0.0.1:0 --root "$W/bad" >/dev/null 2>bad.err; then
  fail "a wrong secret key was accepted"
else
  grep -q "SignatureDoesNotMatch\|AccessDenied\|InvalidAccessKeyId" bad.err && ! grep -q wrong-secret bad.err &&
    [ "$(wc -l <bad.err)" -eq 1 ] && pass "a wrong secret key: $(cat bad.err)" || { fail "wrong secret key message"; cat bad.err; }
fi
s3_config down.json b1 /x "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "http://127.0.0.1:$(free_port)"
if timeout 60 "$BIN/ocireg" serve --config down.json --listen 127.0.0.1:0 --root "$W/down" >/dev/null 2>down.err; then
  fail "an unreachable endpoint was accepted"
else
  [ "$(wc -l <down.err)" -eq 1 ] && grep -q "object store" down.err && pass "an unreachable endpoint: $(cat down.err)" ||
    { fail "unreachable endpoint message"; cat down.err; }
fi

# --- an https endpoint: verified against ca_file; refused without it
/usr/bin/python3 - "$S3_TLS_ENDPOINT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_CA" <<'PY' >tls.json
import json, sys
e, a, k, ca = sys.argv[1:]
print(json.dumps({"storage": {"s3": {"regionendpoint": e, "bucket": "tls", "rootdirectory": "/t",
                                     "accesskey": a, "secretkey": k, "ca_file": ca}}}))
PY
start_registry tls --config "$W/tls.json"
make_layout small v1 s3-tls
check "skopeo push over an https object store (CA from ca_file)" \
  skopeo --insecure-policy copy --dest-tls-verify=false oci:small:v1 "docker://$REG_tls/tls/img:v1"
check "skopeo pull back" skopeo --insecure-policy copy --src-tls-verify=false "docker://$REG_tls/tls/img:v1" oci:small-back:v1
objects tls | grep -q "^t/blobs/sha256/" && pass "blobs landed in the bucket over TLS" || fail "no blobs over TLS"
kill "$PID_tls"; wait "$PID_tls" 2>/dev/null
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); del c["storage"]["s3"]["ca_file"]; print(json.dumps(c))' tls.json >tls-noca.json
if SSL_CERT_FILE=/nonexistent "$BIN/ocireg" serve --config tls-noca.json --listen 127.0.0.1:0 --root "$W/noca" >/dev/null 2>noca.err; then
  fail "an untrusted object store certificate was accepted"
else
  grep -q "not trusted\|TLS" noca.err && pass "an untrusted certificate: $(cat noca.err)" || { fail "untrusted cert message"; cat noca.err; }
fi

# --- the conformance suite, every registry on S3 (a prefix per store)
s3_config conf.json conf "/@UNIQUE@"
OCIB_TEST_CONFIG="$W/conf.json" "$BIN/registry_conformance_test" >suite.out 2>&1
rc=$?
[ $rc -eq 0 ] && pass "conformance suite on S3 ($(grep -ao 'test cases:.*' suite.out | head -1))" ||
  { fail "conformance suite on S3"; grep -a -B3 -A8 "ERROR" suite.out | head -60; }
n=$(objects conf | grep -c '/blobs/sha256/')
[ "$n" -gt 3 ] && pass "the suite's blobs are objects in the bucket ($n)" || fail "suite blobs in bucket: $n"

# --- skopeo: an image whose layer spans several 5 MiB segments
s3_config reg.json reg /team
start_registry main --config "$W/reg.json"
R="$REG_main"
mkdir -p big/rootfs
head -c $((17 * 1024 * 1024 + 12345)) /dev/urandom > big/rootfs/data
tar -C big/rootfs -cf big/layer.tar . && gzip -1 -n -c big/layer.tar > big/layer.tgz
mkdir -p img/blobs/sha256
lh=$(sha256sum big/layer.tgz | cut -d' ' -f1); cp big/layer.tgz img/blobs/sha256/$lh
dh=$(sha256sum big/layer.tar | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$dh" > cfg.json
ch=$(sha256sum cfg.json | cut -d' ' -f1); cp cfg.json img/blobs/sha256/$ch
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$ch" "$(stat -c%s cfg.json)" "$lh" "$(stat -c%s big/layer.tgz)" > man.json
mh=$(sha256sum man.json | cut -d' ' -f1); cp man.json img/blobs/sha256/$mh
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$mh" "$(stat -c%s man.json)" > img/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > img/oci-layout
check "skopeo pushes a 17 MiB layer to the S3-backed registry" \
  skopeo --insecure-policy copy --dest-tls-verify=false oci:img:v1 "docker://$R/team/big:v1"
check "skopeo pulls it back" \
  skopeo --insecure-policy copy --src-tls-verify=false "docker://$R/team/big:v1" oci:back:v1
cmp -s img/blobs/sha256/$lh back/blobs/sha256/$lh && pass "the pulled layer is byte-identical" || fail "pulled layer differs"
objects reg > objs.txt
grep -qx "team/blobs/sha256/$lh" objs.txt && pass "the layer is the object team/blobs/sha256/<digest>" ||
  { fail "layer object missing"; head objs.txt; }
grep -q "^team/uploads/" objs.txt && { fail "upload segments left behind"; grep uploads objs.txt | head; } ||
  pass "no upload segments left after the push"

# --- ranged reads stream from the object
curl -s -H "Range: bytes=6000000-6000099" "http://$R/v2/team/big/blobs/sha256:$lh" -o range.out
cmp -s range.out <(tail -c +6000001 img/blobs/sha256/$lh | head -c 100) && pass "Range GET across a segment boundary" ||
  fail "Range GET bytes differ"
curl -s -H "Range: bytes=-77" "http://$R/v2/team/big/blobs/sha256:$lh" -o suffix.out
cmp -s suffix.out <(tail -c 77 img/blobs/sha256/$lh) && pass "suffix Range GET" || fail "suffix range differs"

# --- redirect: blob GETs answer 307 to a presigned URL on RGW
/usr/bin/python3 - "$W/reg.json" "$W/redirect.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["storage"]["s3"].update(redirect=True, rootdirectory="/redir")
json.dump(c, open(sys.argv[2], "w"))
PY
start_registry redir --config "$W/redirect.json"
read -r code url < <(curl -s -o /dev/null -w '%{http_code} %{redirect_url}\n' "http://$REG_main/v2/team/big/blobs/sha256:$lh")
[ "$code" = 200 ] && pass "without redirect the registry serves the bytes" || fail "no-redirect GET: $code"
check "skopeo pushes to the redirecting registry" \
  skopeo --insecure-policy copy --dest-tls-verify=false oci:img:v1 "docker://$REG_redir/team/big:v1"
read -r code url < <(curl -s -o /dev/null -w '%{http_code} %{redirect_url}\n' "http://$REG_redir/v2/team/big/blobs/sha256:$lh")
case "$code $url" in "307 $S3_ENDPOINT/reg/redir/blobs/sha256/$lh?"*X-Amz-Signature=*) pass "blob GET: 307 to a presigned URL" ;;
  *) fail "redirect answer: $code $url" ;; esac
curl -s "$url" | cmp -s - img/blobs/sha256/$lh && pass "RGW accepts the presigned URL (our SigV4 query signing)" ||
  fail "presigned URL bytes differ"
curl -s -o /dev/null -w '%{http_code}' "${url/X-Amz-Signature=/X-Amz-Signature=0}" | grep -q 403 &&
  pass "a tampered presigned URL is refused (403)" || fail "tampered presigned URL accepted"
echo "a small blob pushed in one request stays in the index" > tiny.txt
tiny="sha256:$(sha256sum tiny.txt | cut -d' ' -f1)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
  --data-binary @tiny.txt "http://$REG_redir/v2/team/big/blobs/uploads/?digest=$tiny")
[ "$code" = 201 ] || fail "monolithic push of a small blob: $code"
code=$(curl -s -o tiny.out -w '%{http_code}' "http://$REG_redir/v2/team/big/blobs/$tiny")
[ "$code" = 200 ] && cmp -s tiny.out tiny.txt && pass "a small blob kept in the index is served, not redirected" ||
  fail "small blob with redirect: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -I "http://$REG_redir/v2/team/big/blobs/sha256:$lh")
[ "$code" = 200 ] && pass "HEAD is answered by the registry, not redirected" || fail "HEAD with redirect: $code"
rm -rf back2
check "skopeo pulls through the redirect" \
  skopeo --insecure-policy copy --src-tls-verify=false "docker://$REG_redir/team/big:v1" oci:back2:v1
cmp -s img/blobs/sha256/$lh back2/blobs/sha256/$lh && pass "the layer pulled through the redirect is byte-identical" ||
  fail "redirect-pulled layer differs"
kill "$PID_redir"; wait "$PID_redir" 2>/dev/null

# --- a chunked upload of 1 MiB PATCHes, the registry killed half way
head -c $((13 * 1024 * 1024 + 999)) /dev/urandom > chunked.bin
split -b 1048576 -d -a 2 chunked.bin part.
ch_digest="sha256:$(sha256sum chunked.bin | cut -d' ' -f1)"
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/team/chunked/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
off=0; ok=1; i=0
for p in part.*; do
  if [ "$i" -eq 7 ]; then
    kill -9 "$PID_main"; wait "$PID_main" 2>/dev/null
    start_registry main --config "$W/reg.json"
    [ "$REG_main" != "$R" ] && R="$REG_main" && loc="$(echo "$loc" | sed -E "s#^http://[^/]+##")"
    got=$(curl -s -D - -o /dev/null "http://$R$loc" | tr -d '\r' | sed -n 's/^Range: //Ip')
    [ "$got" = "0-$((off - 1))" ] && pass "after kill -9 the session resumes at $got" || { fail "resume range $got, want 0-$((off - 1))"; ok=0; }
  fi
  sz=$(stat -c%s "$p")
  url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
  newloc=$(curl -s -D - -o /dev/null -X PATCH -H "Content-Type: application/octet-stream" \
    -H "Content-Range: $off-$((off + sz - 1))" --data-binary @"$p" "$url" | tr -d '\r' | sed -n 's/^Location: //Ip')
  [ -n "$newloc" ] || { ok=0; break; }
  loc="$newloc"; off=$((off + sz)); i=$((i + 1))
done
[ $ok -eq 1 ] && pass "14 PATCHes of 1 MiB accepted" || fail "chunked PATCHes"
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
sep='?'; case "$url" in *\?*) sep='&' ;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$url${sep}digest=$ch_digest")
[ "$code" = 201 ] && pass "the chunked upload commits (digest verified across the restart)" || fail "chunked commit: $code"
curl -s "http://$R/v2/team/chunked/blobs/$ch_digest" | cmp -s - chunked.bin && pass "the chunked blob reads back" ||
  fail "chunked blob differs"

# --- a wrong digest leaves nothing; a cancelled upload leaves nothing
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/team/bad/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
head -c $((6 * 1024 * 1024)) /dev/urandom > six.bin
loc=$(curl -s -D - -o /dev/null -X PATCH -H "Content-Type: application/octet-stream" --data-binary @six.bin "$url" |
  tr -d '\r' | sed -n 's/^Location: //Ip')
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
sep='?'; case "$url" in *\?*) sep='&' ;; esac
wrong="sha256:$(echo wrong | sha256sum | cut -d' ' -f1)"
body=$(curl -s -X PUT "$url${sep}digest=$wrong")
echo "$body" | grep -q DIGEST_INVALID && pass "a wrong digest: DIGEST_INVALID" || fail "wrong digest answer: $body"
real="$(sha256sum six.bin | cut -d' ' -f1)"
objects reg > objs.txt
! grep -q "$real\|${wrong#sha256:}" objs.txt && pass "no object for either digest" || fail "a blob object exists after a bad digest"
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/team/cancel/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
curl -s -o /dev/null -X PATCH -H "Content-Type: application/octet-stream" --data-binary @six.bin "$url"
objects reg | grep -q "^team/uploads/" && pass "an open session's segment is an object" || fail "no segment for an open session"
curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url" | grep -q 204 && pass "DELETE of the upload: 204" || fail "upload DELETE"
objects reg | grep -q "^team/uploads/" && { fail "cancelled upload left segments"; objects reg | grep uploads; } ||
  pass "the cancelled upload's segments are gone"

# --- GC removes the bytes of unreferenced blobs from the bucket
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$R/v2/team/big/manifests/sha256:$mh")
[ "$code" = 202 ] && pass "manifest deleted" || fail "manifest delete: $code"
kill "$PID_main"; wait "$PID_main" 2>/dev/null
"$BIN/ocireg" gc --root "$W/main/store" --config "$W/reg.json" --min-age 0s >gc.out 2>&1 &&
  pass "ocireg gc on S3: $(tail -1 gc.out)" || { fail "ocireg gc"; cat gc.out; }
objects reg > objs.txt
! grep -q "^team/blobs/sha256/$lh" objs.txt && pass "the deleted image's layer object is gone" || fail "layer object survived GC"
! grep -q "^team/blobs/sha256/${ch_digest#sha256:}" objs.txt && pass "the unlinked chunked blob's object is gone" || fail "unlinked blob survived GC"
start_registry main --config "$W/reg.json"
R="$REG_main"
check "skopeo pushes the image again after GC" \
  skopeo --insecure-policy copy --dest-tls-verify=false oci:img:v1 "docker://$R/team/big:v2"

# --- a local blob cache: pushes fill it, whole reads refill it
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["storage"]["s3"].update(rootdirectory="/cached", cache_mib=64); print(json.dumps(c))' reg.json >cached.json
start_registry cached --config "$W/cached.json"
check "skopeo pushes to a registry with a blob cache" \
  skopeo --insecure-policy copy --dest-tls-verify=false oci:img:v1 "docker://$REG_cached/team/big:v1"
cache="$W/cached/store/s3-cache/blobs"
[ -f "$cache/sha256-$lh" ] && cmp -s "$cache/sha256-$lh" img/blobs/sha256/$lh &&
  pass "the pushed layer is in the local cache, byte-identical" || { fail "layer not cached"; ls -la "$cache" 2>&1 | head; }
kill "$PID_cached"; wait "$PID_cached" 2>/dev/null
rm -f "$cache"/*
start_registry cached --config "$W/cached.json"
curl -s "http://$REG_cached/v2/team/big/blobs/sha256:$lh" | cmp -s - img/blobs/sha256/$lh && pass "pulled from RGW" || fail "pull differs"
[ -f "$cache/sha256-$lh" ] && cmp -s "$cache/sha256-$lh" img/blobs/sha256/$lh &&
  pass "a whole read refilled the cache" || fail "read-through did not cache the layer"
curl -s -H "Range: bytes=10-20" -o /dev/null "http://$REG_cached/v2/team/big/blobs/sha256:$lh"
ls "$W/cached/store/s3-cache/tmp" | grep -q . && fail "a ranged read left a cache temp file" || pass "ranged reads leave no cache files"

# --- the object store down at commit: 503, the session kept; the retry
#     after it returns commits
head -c $((7 * 1024 * 1024 + 4321)) /dev/urandom > seven.bin
seven="sha256:$(sha256sum seven.bin | cut -d' ' -f1)"
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/team/retry/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
loc=$(curl -s -D - -o /dev/null -X PATCH -H "Content-Type: application/octet-stream" --data-binary @seven.bin "$url" |
  tr -d '\r' | sed -n 's/^Location: //Ip')
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
sep='?'; case "$url" in *\?*) sep='&' ;; esac
kill -9 "${CEPH_PIDS[2]}"; wait "${CEPH_PIDS[2]}" 2>/dev/null
code=$(curl -s -o put.body -w '%{http_code}' --max-time 60 -X PUT "$url${sep}digest=$seven")
[ "$code" = 503 ] && pass "a commit with RGW down: 503" || { fail "commit with RGW down answered $code"; cat put.body; }
restart_rgw && pass "radosgw restarted" || fail "radosgw did not restart"
code=$(curl -s -o put.body -w '%{http_code}' --max-time 60 -X PUT "$url${sep}digest=$seven")
[ "$code" = 201 ] && pass "the client's retried commit succeeds once RGW is back" || { fail "retried commit: $code"; cat put.body; }
curl -s "http://$R/v2/team/retry/blobs/$seven" | cmp -s - seven.bin && pass "the retried blob reads back" ||
  fail "retried blob differs"

# --- the object store down: blob reads fail cleanly, the rest serves
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/team/late/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
kill -9 "${CEPH_PIDS[2]}"; wait "${CEPH_PIDS[2]}" 2>/dev/null
url="$loc"; case "$url" in http*) ;; *) url="http://$R$loc" ;; esac
code=$(curl -s -o patch.body -w '%{http_code}' --max-time 60 -X PATCH -H "Content-Type: application/octet-stream" \
  --data-binary @six.bin "$url")
[ "$code" = 503 ] && grep -q UNAVAILABLE patch.body && pass "a PATCH that cannot reach the object store: 503, not 202" ||
  { fail "PATCH with RGW down answered $code"; cat patch.body; }
curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/" | grep -q 200 && pass "/v2/ answers with RGW down" || fail "/v2/ with RGW down"
code=$(curl -s -o down.body -w '%{http_code}' --max-time 30 "http://$R/v2/team/big/blobs/sha256:$lh")
case "$code" in 5*) grep -q '"errors"' down.body && ! grep -q "127.0.0.1\|/tmp/" down.body &&
  pass "a blob GET with RGW down: $code with a JSON error, no address or path" || { fail "RGW-down body"; cat down.body; } ;;
  *) fail "blob GET with RGW down answered $code" ;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/team/big/manifests/v2")
[ "$code" = 200 ] && pass "manifests still served from the index with RGW down" || fail "manifest GET with RGW down: $code"
kill -0 "$PID_main" 2>/dev/null && pass "the registry is still up" || fail "the registry died with RGW down"
curl -s "http://$REG_cached/v2/team/big/blobs/sha256:$lh" | cmp -s - img/blobs/sha256/$lh &&
  pass "a cached layer is served with RGW down" || fail "cached layer not served with RGW down"
finish

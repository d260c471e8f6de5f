#!/usr/bin/env bash
# skopeo (Debian) against the real ocireg: copy in, copy again (nothing
# re-uploaded), copy out and compare digests, list-tags, inspect, copy
# between repositories, multi-arch index, Docker schema 2, delete.
source "$(dirname "$0")/lib.sh"
command -v skopeo >/dev/null || { echo "skopeo not installed"; echo "0 passed, 1 failed"; exit 1; }

start_registry r
R=$REG_r
LOG=$REGLOG_r
S="skopeo --insecure-policy"
TLS="--dest-tls-verify=false"

make_layout "$WORK/layout" v1 interop
want=$(jq -r '.manifests[0].digest' "$WORK/layout/index.json")

check "skopeo copy oci layout -> ocireg" $S copy $TLS "oci:$WORK/layout:v1" "docker://$R/interop/busybox:v1"
sleep 0.3  # the access log is flushed every 100 ms
uploads_before=$(grep -c '"POST /v2/interop/busybox/blobs/uploads/"' "$LOG" || true)
check "skopeo copy again" $S copy $TLS "oci:$WORK/layout:v1" "docker://$R/interop/busybox:v1"
sleep 0.3
uploads_after=$(grep -c '"POST /v2/interop/busybox/blobs/uploads/"' "$LOG" || true)
if [ "$uploads_before" -ge 2 ] && [ "$uploads_before" = "$uploads_after" ]; then
  pass "second copy uploads no blob (blobs already exist: $uploads_before uploads, then none)"
else
  fail "second copy re-uploaded blobs ($uploads_before then $uploads_after uploads)"
fi

got=$($S inspect --tls-verify=false --raw "docker://$R/interop/busybox:v1" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$want" ] && pass "manifest served byte-exact ($want)" || fail "manifest digest $got != $want"

check "skopeo copy ocireg -> oci layout" $S copy --src-tls-verify=false "docker://$R/interop/busybox:v1" "oci:$WORK/out:v1"
out=$(jq -r '.manifests[0].digest' "$WORK/out/index.json")
[ "$out" = "$want" ] && pass "round trip keeps the manifest digest" || fail "round trip digest $out != $want"
same=yes
for b in "$WORK"/layout/blobs/sha256/*; do
  cmp -s "$b" "$WORK/out/blobs/sha256/$(basename "$b")" || { same=no; echo "    differs: $(basename "$b")"; }
done
[ $same = yes ] && pass "round trip blobs identical" || fail "round trip blobs differ"

tags=$($S list-tags --tls-verify=false "docker://$R/interop/busybox" | jq -c '.Tags')
[ "$tags" = '["v1"]' ] && pass "list-tags" || fail "list-tags gave $tags"

arch=$($S inspect --tls-verify=false "docker://$R/interop/busybox:v1" | jq -r '.Architecture')
[ "$arch" = amd64 ] && pass "inspect reads the config" || fail "inspect architecture $arch"

check "copy between two repositories" $S copy --src-tls-verify=false $TLS "docker://$R/interop/busybox:v1" "docker://$R/interop/copy:v1"
got=$($S inspect --tls-verify=false --raw "docker://$R/interop/copy:v1" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$want" ] && pass "copied repository serves the same manifest" || fail "copy digest $got"
check "pull by digest" $S inspect --tls-verify=false --raw "docker://$R/interop/copy@$want"

check "copy as Docker schema 2" $S copy $TLS --format v2s2 "oci:$WORK/layout:v1" "docker://$R/interop/docker:v1"
mt=$($S inspect --tls-verify=false --raw "docker://$R/interop/docker:v1" | jq -r '.mediaType')
[ "$mt" = application/vnd.docker.distribution.manifest.v2+json ] && pass "schema 2 stored as such" || fail "schema 2 media type $mt"

make_multiarch_layout "$WORK/multi" v1 multi
check "copy a multi-arch index (--all)" $S copy --all $TLS "oci:$WORK/multi:v1" "docker://$R/interop/multi:v1"
n=$($S inspect --tls-verify=false --raw "docker://$R/interop/multi:v1" | jq '.manifests | length')
[ "$n" = 2 ] && pass "index with 2 platforms served" || fail "index has $n manifests"
arch=$($S inspect --tls-verify=false --override-arch arm64 "docker://$R/interop/multi:v1" | jq -r '.Architecture')
[ "$arch" = arm64 ] && pass "platform selection from the index" || fail "arm64 selection gave $arch"
check "copy index out again (--all)" $S copy --all --src-tls-verify=false "docker://$R/interop/multi:v1" "oci:$WORK/multi-out:v1"

check "skopeo delete" $S delete --tls-verify=false "docker://$R/interop/copy:v1"
check_fails "deleted image no longer pulls" $S inspect --tls-verify=false "docker://$R/interop/copy:v1"
check "other repository unaffected" $S inspect --tls-verify=false "docker://$R/interop/busybox:v1"

finish

#!/usr/bin/env bash
# containerd's ctr (Debian, a private containerd with its own root, state
# and socket, cri disabled) against the real ocireg: pull by tag and by
# digest, a multi-platform index, a Docker manifest list, push back, and
# fail to pull after a manifest DELETE.
source "$(dirname "$0")/lib.sh"
command -v containerd >/dev/null || { echo "containerd not installed"; echo "0 passed, 1 failed"; exit 1; }

start_registry r
R=$REG_r
S="skopeo --insecure-policy"
start_containerd ocibtest
check "containerd is up" $CTR version

seed_registry "$R" ctr
digest=$DIGEST

check "ctr pull by tag" $CTR images pull --plain-http "$R/library/busybox:latest"
check "ctr pull by digest" $CTR images pull --plain-http "$R/library/busybox@sha256:$digest"
check "ctr pull a multi-platform index (all platforms)" $CTR images pull --plain-http --all-platforms "$R/library/multi:oci"
check "ctr pull a Docker manifest list" $CTR images pull --plain-http "$R/library/multi:list"
check "pulled content verifies" $CTR images check
$CTR images tag "$R/library/busybox:latest" "$R/team/ctr:v1" >/dev/null
check "ctr push" $CTR images push --plain-http "$R/team/ctr:v1"
check "pushed image inspects" $S inspect --tls-verify=false "docker://$R/team/ctr:v1"
pushed=$($S inspect --tls-verify=false --raw "docker://$R/team/ctr:v1" | sha256sum | cut -d' ' -f1)
status=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$R/v2/team/ctr/manifests/sha256:$pushed")
[ "$status" = 202 ] && pass "manifest DELETE" || fail "manifest DELETE answered $status"
$CTR images rm "$R/team/ctr:v1" >/dev/null 2>&1 || true
check_fails "ctr pull after manifest DELETE fails" $CTR images pull --plain-http "$R/team/ctr:v1"

finish

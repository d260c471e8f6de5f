#!/usr/bin/env bash
# podman (Debian, private root/runroot) against the real ocireg: pull by tag
# and by digest, run, pull an OCI index and a Docker manifest list, push
# back, and fail to pull after a manifest DELETE.
source "$(dirname "$0")/lib.sh"
command -v podman >/dev/null || { echo "podman not installed"; echo "0 passed, 1 failed"; exit 1; }

start_registry r
R=$REG_r
S="skopeo --insecure-policy"
P="podman --root $WORK/podman/root --runroot $WORK/podman/run --cgroup-manager cgroupfs --events-backend file --runtime runc"
trap '$P system reset -f >/dev/null 2>&1 || true; cleanup' EXIT

seed_registry "$R" podman
digest=$DIGEST

check "podman pull by tag" $P pull --tls-verify=false "$R/library/busybox:latest"
check "podman run of the pulled busybox" bash -c "$P run --rm --network none --ulimit nofile=1024:1024 \
  --ulimit nproc=1024:1024 $R/library/busybox:latest echo hello-ocireg | grep -qx hello-ocireg"
check "podman pull by digest" $P pull --tls-verify=false "$R/library/busybox@sha256:$digest"
check "podman pull an OCI image index" $P pull --tls-verify=false "$R/library/multi:oci"
check "podman pull a Docker manifest list" $P pull --tls-verify=false "$R/library/multi:list"
check "podman pull another platform from the index" $P pull --tls-verify=false --arch arm64 "$R/library/multi:oci"
$P tag "$R/library/busybox:latest" "$R/team/podman:v1"
check "podman push" $P push --tls-verify=false "$R/team/podman:v1"
check "pushed image inspects" $S inspect --tls-verify=false "docker://$R/team/podman:v1"
pushed=$($S inspect --tls-verify=false --raw "docker://$R/team/podman:v1" | sha256sum | cut -d' ' -f1)
status=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$R/v2/team/podman/manifests/sha256:$pushed")
[ "$status" = 202 ] && pass "manifest DELETE" || fail "manifest DELETE answered $status"
$P rmi -af >/dev/null 2>&1 || true
check_fails "podman pull after manifest DELETE fails" $P pull --tls-verify=false "$R/team/podman:v1"
check_fails "podman pull by digest after DELETE fails" $P pull --tls-verify=false "$R/team/podman@sha256:$pushed"

finish

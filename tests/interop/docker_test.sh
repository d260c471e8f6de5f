#!/usr/bin/env bash
# A real Docker engine (Debian's docker.io, private state, started and
# stopped here by PID) against the real ocireg: pull by tag and by digest,
# run the pulled busybox with no network, pull an OCI index and a Docker
# manifest list, push back (with cross-repository mount), and fail to pull
# after a manifest DELETE.
source "$(dirname "$0")/lib.sh"
command -v dockerd >/dev/null || { echo "dockerd not installed"; echo "0 passed, 1 failed"; exit 1; }

start_registry r
R=$REG_r
S="skopeo --insecure-policy"

D="$WORK/docker"
mkdir -p "$D"
dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
  --pidfile "$D/docker.pid" --iptables=false --ip6tables=false --bridge=none \
  --storage-driver overlay2 --insecure-registry "$R" >"$D/dockerd.log" 2>&1 &
DOCKERD=$!
stop_docker() { stop_pid "$DOCKERD"; }
trap 'stop_docker; cleanup' EXIT
DK="docker -H unix://$D/docker.sock"
for i in $(seq 100); do $DK info >/dev/null 2>&1 && break; sleep 0.2; done
check "dockerd is up" $DK info

seed_registry "$R" docker
digest=$DIGEST

check "docker pull by tag" $DK pull "$R/library/busybox:latest"
check "docker run --network none of the pulled busybox" \
  bash -c "$DK run --rm --network none $R/library/busybox:latest echo hello-ocireg | grep -qx hello-ocireg"
check "docker pull by digest" $DK pull "$R/library/busybox@sha256:$digest"
check "docker pull an OCI image index" $DK pull "$R/library/multi:oci"
check "docker pull a Docker manifest list" $DK pull "$R/library/multi:list"
mt=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
  -o /dev/null -w '%{content_type}' "http://$R/v2/library/multi/manifests/list")
[ "$mt" = application/vnd.docker.distribution.manifest.list.v2+json ] && pass "list served as manifest list" || fail "list type $mt"

$DK tag "$R/library/busybox:latest" "$R/team/pushed:v1"
check "docker push" $DK push "$R/team/pushed:v1"
# The access log is flushed every 100 ms; wait up to 3 s for the line.
mounted=no
for i in $(seq 30); do
  grep -q '"POST /v2/team/pushed/blobs/uploads/" 201' "$REGLOG_r" && { mounted=yes; break; }
  sleep 0.1
done
[ $mounted = yes ] && pass "push mounted the layer across repositories" || fail "push did not mount"
$DK rmi "$R/team/pushed:v1" >/dev/null
check "pull of the pushed image" $DK pull "$R/team/pushed:v1"
pushed=$(curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$R/v2/team/pushed/manifests/v1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
status=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$R/v2/team/pushed/manifests/$pushed")
[ "$status" = 202 ] && pass "manifest DELETE" || fail "manifest DELETE answered $status"
# Drop every local image so the pulls below must ask the registry. The
# `run --rm` container is removed asynchronously; while it exists, rmi -f
# only untags its image (seen on a loaded machine), so wait for it.
for i in $(seq 50); do [ -z "$($DK ps -aq)" ] && break; sleep 0.2; done
$DK rmi -f $($DK images -q) >/dev/null 2>&1 || true
[ -z "$($DK images -qa)" ] && pass "no local images left" || fail "local images left: $($DK images -qa | tr '\n' ' ')"
check_fails "docker pull after manifest DELETE fails" $DK pull "$R/team/pushed:v1"
check_fails "docker pull by digest after DELETE fails" $DK pull "$R/team/pushed@$pushed"

finish

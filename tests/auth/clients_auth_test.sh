#!/usr/bin/env bash
# Real container clients against ocireg with TLS, htpasswd users, the
# built-in token server and an ACL (issue 13): docker (login through the
# token server, push, pull, logout, pull refused), podman and skopeo with
# --cert-dir and verified TLS, containerd's ctr with --user and
# --tlscacert. A user with pull only cannot push.
#
# dockerd treats every registry on 127.0.0.0/8 as insecure (it skips
# certificate checks there), so certificate verification is proven with
# podman, skopeo and ctr, and docker proves login, push and pull over TLS.
source "$(dirname "$0")/../interop/lib.sh"
set +e
for c in dockerd podman containerd ctr htpasswd; do
  command -v $c >/dev/null || { echo "$c not installed"; echo "0 passed, 1 failed"; exit 1; }
done
W=$WORK
q() { "$@" >/dev/null 2>&1; }
cd "$W"

# A CA and a certificate for 127.0.0.1; the token server's key; users.
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem
q openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out token.key
htpasswd -Bbn -C 10 alice s3cret > htpasswd 2>/dev/null
htpasswd -Bbn -C 10 bob b0b-pw >> htpasswd 2>/dev/null
cat > config.json <<JSON
{"listen": "127.0.0.1:0", "root": "$W/store",
 "tls": {"cert_file": "$W/server.pem", "key_file": "$W/server.key"},
 "quotas": [{"namespace": "tiny", "bytes": 1000}],
 "auth": {"htpasswd": {"path": "$W/htpasswd"}, "token_server": {"key_file": "$W/token.key"},
          "acl": {"rules": [{"users": ["alice"], "actions": ["admin"]},
                            {"repository": "team/**", "users": ["bob"], "actions": ["pull"]}]}}}
JSON
"$BIN_DIR/ocireg" serve --config config.json --port-file port >access.log 2>server.log &
PIDS+=($!)
for i in $(seq 200); do [ -s port ] && break; sleep 0.05; done
R=127.0.0.1:$(cat port)
for i in $(seq 100); do curl -s -o /dev/null --cacert ca.pem "https://$R/v2/" && break; sleep 0.05; done
check "ocireg serves HTTPS with auth" bash -c "curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem https://$R/v2/ | grep -qx 401"
mkdir -p certs.d && cp ca.pem certs.d/ca.crt

# An image to push: an OCI layout with busybox.
make_layout "$W/bb" v1 clients-auth
S="skopeo --insecure-policy"
check "skopeo copy with --dest-creds and --dest-cert-dir (verified TLS)" \
  $S copy --dest-cert-dir "$W/certs.d" --dest-creds alice:s3cret "oci:$W/bb:v1" "docker://$R/team/base:v1"
check_fails "skopeo without the CA refuses the certificate" \
  $S inspect --creds alice:s3cret "docker://$R/team/base:v1"

# --- podman ---------------------------------------------------------------
P="podman --root $W/podman/root --runroot $W/podman/run --cgroup-manager cgroupfs --events-backend file --runtime runc"
AF="--authfile $W/podman-auth.json"
check "podman login (token server) with --cert-dir and --tls-verify=true" \
  $P login $AF --cert-dir "$W/certs.d" --tls-verify=true -u alice -p s3cret "$R"
check_fails "podman login with a wrong password fails" \
  $P login --authfile "$W/other-auth.json" --cert-dir "$W/certs.d" --tls-verify=true -u alice -p wrong "$R"
check "podman pull over verified TLS" $P pull $AF --cert-dir "$W/certs.d" --tls-verify=true "$R/team/base:v1"
$P tag "$R/team/base:v1" "$R/team/podman:v1"
check "podman push" $P push $AF --cert-dir "$W/certs.d" --tls-verify=true "$R/team/podman:v1"
check "podman logout" $P logout $AF "$R"
$P rmi -af >/dev/null 2>&1
check_fails "podman pull after logout is refused" $P pull $AF --cert-dir "$W/certs.d" --tls-verify=true "$R/team/podman:v1"
check "podman pull with --creds (bob, pull only)" \
  $P pull $AF --cert-dir "$W/certs.d" --creds bob:b0b-pw "$R/team/podman:v1"
$P tag "$R/team/podman:v1" "$R/team/bob:v1"
check_fails "podman push as bob (pull only) is refused" \
  $P push $AF --cert-dir "$W/certs.d" --creds bob:b0b-pw "$R/team/bob:v1"
grep -q "denied\|unauthorized\|authentication required" "$W/last.out" && pass "... with a denied/unauthorized error" || fail "podman refusal message: $(tail -1 "$W/last.out")"
$P system reset -f >/dev/null 2>&1

# --- containerd's ctr -------------------------------------------------------
start_containerd ocibauth
# ctr 1.6 speaks plain HTTP to loopback hosts unless a hosts directory
# names the https server.
HD="$W/hosts.d/$R"
mkdir -p "$HD"
printf 'server = "https://%s"\n[host."https://%s"]\n  capabilities = ["pull", "resolve", "push"]\n' "$R" "$R" > "$HD/hosts.toml"
HOSTS="--hosts-dir $W/hosts.d"
check "ctr pull with --user and --tlscacert" $CTR images pull $HOSTS --user alice:s3cret --tlscacert "$W/ca.pem" "$R/team/base:v1"
check_fails "ctr pull without credentials is refused" $CTR images pull $HOSTS --tlscacert "$W/ca.pem" "$R/team/podman:v1"
$CTR images tag "$R/team/base:v1" "$R/team/ctr:v1" >/dev/null
check "ctr push with --user" $CTR images push $HOSTS --user alice:s3cret --tlscacert "$W/ca.pem" "$R/team/ctr:v1"
check_fails "ctr pull with a CA that did not sign the certificate fails" \
  $CTR images pull $HOSTS --user alice:s3cret --tlscacert /etc/ssl/certs/ca-certificates.crt "$R/team/ctr:v1"
stop_pid $CTRD

# --- docker -------------------------------------------------------------
D="$W/docker"
mkdir -p "$D"
# dockerd reads registry CAs from /etc/docker/certs.d/<host:port>/ (it has
# no flag for another place); the directory is removed at exit.
CERTS_D="/etc/docker/certs.d/$R"
mkdir -p "$CERTS_D" && cp ca.pem "$CERTS_D/ca.crt"
dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
  --pidfile "$D/docker.pid" --iptables=false --ip6tables=false --bridge=none \
  --storage-driver overlay2 >"$D/dockerd.log" 2>&1 &
DOCKERD=$!
trap 'stop_pid $DOCKERD; rm -rf "$CERTS_D"; cleanup' EXIT
export DOCKER_CONFIG="$W/docker-config"
DK="docker -H unix://$D/docker.sock"
for i in $(seq 100); do $DK info >/dev/null 2>&1 && break; sleep 0.2; done
check "dockerd is up" $DK info
check_fails "docker login with a wrong password fails" bash -c "echo wrong | $DK login -u alice --password-stdin $R"
check "docker login (Basic to the token server, Bearer to the registry)" bash -c "echo s3cret | $DK login -u alice --password-stdin $R"
grep -q "\"$R\"" "$DOCKER_CONFIG/config.json" && pass "docker stored the login" || fail "no credentials in config.json"
check "docker pull over TLS with the token" $DK pull "$R/team/base:v1"
$DK tag "$R/team/base:v1" "$R/team/docker:v1"
check "docker push" $DK push "$R/team/docker:v1"
$DK rmi "$R/team/docker:v1" "$R/team/base:v1" >/dev/null 2>&1
check "docker pull of what it pushed" $DK pull "$R/team/docker:v1"
check "docker logout" $DK logout "$R"
$DK rmi -f $($DK images -q) >/dev/null 2>&1
check_fails "docker pull after logout is refused" $DK pull "$R/team/docker:v1"
grep -qi "unauthorized\|denied\|authentication required" "$W/last.out" && pass "... as unauthorized" || fail "docker refusal: $(tail -1 "$W/last.out")"
check "docker login as bob" bash -c "echo b0b-pw | $DK login -u bob --password-stdin $R"
check "bob pulls team/docker" $DK pull "$R/team/docker:v1"
$DK tag "$R/team/docker:v1" "$R/team/bob:v1"
check_fails "bob's docker push is refused" $DK push "$R/team/bob:v1"
grep -qi "denied" "$W/last.out" && pass "... as denied" || fail "docker refusal for bob: $(tail -1 "$W/last.out")"
check "docker login as alice again" bash -c "echo s3cret | $DK login -u alice --password-stdin $R"
$DK tag "$R/team/docker:v1" "$R/tiny/app:v1"
check_fails "docker push over the namespace's quota fails" $DK push "$R/tiny/app:v1"
grep -q "quota exceeded for namespace tiny" "$W/last.out" && pass "... with the quota message in docker's output" || fail "docker quota message: $(tail -2 "$W/last.out")"
sleep 0.3
grep -q 'audit push-manifest user=alice .* repository=team/docker reference=v1' access.log &&
  pass "audit log: alice's docker push" || fail "no audit line for the docker push"

finish

#!/usr/bin/env bash
# ocibuild login/logout and Basic authentication against Debian's
# Distribution 2.8 with an htpasswd file: pushes are refused until login,
# a wrong password fails in one line, credentials land in docker's
# config.json format (skopeo reads them), logout removes them.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir auth
command -v docker-registry >/dev/null && command -v htpasswd >/dev/null || { echo "needs docker-registry and htpasswd"; echo "0 passed, 1 failed"; exit 1; }
export DOCKER_CONFIG="$W/docker-config"
B="$BIN/ocibuild --root $W/a"

PORT=$(free_port)
htpasswd -Bbn alice s3cret > "$W/htpasswd" 2>/dev/null
cat > "$W/dist.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/dist
auth:
  htpasswd:
    realm: ocibuild-test
    path: $W/htpasswd
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
REG=$!
PIDS+=($REG)
R="127.0.0.1:$PORT"
for i in $(seq 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/")" = 401 ] && break; sleep 0.05; done

mkdir -p "$W/img"; cp /bin/busybox "$W/img/"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "authed"]\n' > "$W/img/Dockerfile"
$B build -t "$R/team/app:1" "$W/img" >/dev/null 2>&1 || fail "build"

if $B push "$R/team/app:1" >"$W/out" 2>&1; then fail "push without login succeeded"; else
  grep -q "ocibuild login $R" "$W/out" && pass "push without login: one line saying to log in" || { fail "no-login message"; cat "$W/out"; }
fi
if echo wrong | $B login "$R" -u alice --password-stdin >"$W/out" 2>&1; then fail "wrong password accepted"; else
  [ "$(wc -l < "$W/out")" -eq 1 ] && grep -q "login to $R failed" "$W/out" && pass "wrong password: one-line error" || { fail "wrong-password message"; cat "$W/out"; }
fi
[ -e "$DOCKER_CONFIG/config.json" ] && grep -q "$R" "$DOCKER_CONFIG/config.json" && fail "failed login stored credentials" || pass "failed login stores nothing"
if echo s3cret | $B login "$R" -u alice --password-stdin >"$W/out" 2>&1 && grep -q "Login Succeeded" "$W/out"; then pass "login"; else fail "login"; cat "$W/out"; fi
auth=$(jq -r --arg h "$R" '.auths[$h].auth' "$DOCKER_CONFIG/config.json" 2>/dev/null)
[ "$auth" = "$(printf 'alice:s3cret' | base64)" ] && pass "credentials stored in docker's config.json format" || fail "config.json auth: $auth"
if $B push "$R/team/app:1" >"$W/out" 2>&1; then pass "push after login"; else fail "push after login"; cat "$W/out"; fi
if $BIN/ocibuild --root "$W/b" pull "$R/team/app:1" >"$W/out" 2>&1 && $BIN/ocibuild --root "$W/b" run "$R/team/app:1" | grep -qx authed; then
  pass "pull with the stored credentials"
else
  fail "pull after login"; cat "$W/out"
fi
skopeo inspect --tls-verify=false --authfile "$DOCKER_CONFIG/config.json" "docker://$R/team/app:1" >/dev/null 2>&1 \
  && pass "skopeo uses the credentials ocibuild stored" || fail "skopeo with our auth file"
if $B logout "$R" >"$W/out" 2>&1 && ! jq -e --arg h "$R" '.auths[$h]' "$DOCKER_CONFIG/config.json" >/dev/null; then pass "logout removes them"; else fail "logout"; fi
$B push "$R/team/app:1" >/dev/null 2>&1 && fail "push after logout succeeded" || pass "push after logout is refused"
$B logout "$R" >/dev/null 2>&1 && fail "second logout succeeded" || pass "logout when not logged in fails"

finish

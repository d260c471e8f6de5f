#!/usr/bin/env bash
# The conformance suite (tests/conformance) once more, with every test
# registry serving HTTPS (a CA made here) and requiring authentication
# (htpasswd user, token server and ACL configured); the suite's client
# verifies the certificate and sends the user's credentials. The cases
# that write plain HTTP on raw sockets are left out (suite "raw-socket").
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir conftls
cd "$W" || exit 1
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem
q openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out token.key
htpasswd -Bbn -C 10 suite 'p4ss:word' > htpasswd 2>/dev/null
cat > config.json <<JSON
{"tls": {"cert_file": "$W/server.pem", "key_file": "$W/server.key"},
 "auth": {"htpasswd": {"path": "$W/htpasswd"}, "token_server": {"key_file": "$W/token.key"},
          "acl": {"rules": [{"users": ["suite"], "actions": ["admin"]}]}}}
JSON
# Without credentials the registry must refuse: proves the settings apply.
"$BIN/ocireg" serve --config config.json --listen 127.0.0.1:0 --root "$W/probe" --port-file port >/dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 100); do [ -s port ] && break; sleep 0.05; done
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem "https://127.0.0.1:$(cat port)/v2/")
[ "$code" = 401 ] && pass "the suite's registry config requires TLS and credentials" || fail "probe answered $code"
OCIB_TEST_CONFIG="$W/config.json" OCIB_TEST_CA="$W/ca.pem" OCIB_TEST_CREDENTIALS='suite:p4ss:word' \
  "$BIN/registry_conformance_test" --test-suite-exclude=raw-socket > suite.out 2>&1
rc=$?
tail -4 suite.out
[ $rc -eq 0 ] && pass "conformance suite over TLS with authentication" || { fail "conformance suite over TLS with auth"; grep -B3 -A8 "ERROR" suite.out | head -80; }
finish

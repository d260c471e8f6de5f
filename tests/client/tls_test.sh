#!/usr/bin/env bash
# ocibuild over HTTPS: ocireg behind an nginx TLS proxy with a CA made in
# the test. Plain HTTP to it fails clearly; --ca-cert verifies against a
# private CA (and a wrong CA fails clearly); --insecure and the config's
# "insecure-registries" skip verification; --insecure against a plain-HTTP
# registry falls back to HTTP. Also: progress bars on a terminal.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir tls
export XDG_CONFIG_HOME="$W/config" DOCKER_CONFIG="$W/docker"

# A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout "$W/ca.key" -out "$W/ca.pem"
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout "$W/other.key" -out "$W/other.pem"
q openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$W/server.key" -out "$W/server.csr"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$W/san.ext"
q openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
  -extfile "$W/san.ext" -out "$W/server.pem"
[ -s "$W/server.pem" ] || { fail "make certificates"; finish; exit 1; }

"$BIN/ocireg" serve --listen 127.0.0.1:0 --root "$W/ocireg" --port-file "$W/port" >"$W/ocireg.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
P=$(cat "$W/port")
T=$(free_port)
mkdir -p "$W/nginx/tmp" "$W/nginx/logs"
cat > "$W/nginx.conf" <<NGX
user root;
worker_processes 1;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $W/nginx/tmp;
  proxy_temp_path $W/nginx/tmp;
  server {
    listen 127.0.0.1:$T ssl;
    ssl_certificate $W/server.pem;
    ssl_certificate_key $W/server.key;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    location / {
      proxy_pass http://127.0.0.1:$P;
      proxy_http_version 1.1;
      proxy_set_header Host \$http_host;
    }
  }
}
NGX
nginx -c "$W/nginx.conf" -p "$W/nginx" >"$W/nginx.out" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do curl -s -o /dev/null --cacert "$W/ca.pem" "https://127.0.0.1:$T/v2/" && break; sleep 0.05; done
curl -sf -o /dev/null --cacert "$W/ca.pem" "https://127.0.0.1:$T/v2/" && pass "TLS proxy up" || { fail "TLS proxy"; cat "$W/nginx.out" "$W/nginx/logs/error.log"; }

B="$BIN/ocibuild --root $W/a"
mkdir -p "$W/rootfs/etc"
head -c 3000000 /dev/urandom > "$W/rootfs/etc/blob"
echo tls > "$W/rootfs/etc/hello"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
$B import "$W/rootfs.tar" tiny:1 >/dev/null 2>&1 || fail "import"
R="127.0.0.1:$T"
$B tag tiny:1 "$R/team/tiny:1"

if $B push "$R/team/tiny:1" >"$W/out" 2>&1; then fail "plain HTTP to a TLS registry succeeded"; else
  grep -q "only speaks HTTPS" "$W/out" && [ "$(wc -l < "$W/out")" -le 2 ] && pass "plain HTTP to a TLS port: one-line error" ||
    { fail "plain HTTP message"; cat "$W/out"; }
fi
if $B push --ca-cert "$W/other.pem" "$R/team/tiny:1" >"$W/out" 2>&1; then fail "push with the wrong CA succeeded"; else
  grep -q "not trusted" "$W/out" && pass "a certificate from another CA is refused with a clear error" || { fail "wrong CA message"; cat "$W/out"; }
fi
if $B push --ca-cert "$W/ca.pem" "$R/team/tiny:1" >"$W/out" 2>&1 && grep -q "1: digest: sha256:" "$W/out"; then
  pass "push over HTTPS verified with --ca-cert"
else
  fail "push with --ca-cert"; cat "$W/out"
fi
want=$(sed -n 's/^1: digest: \(sha256:[0-9a-f]*\).*/\1/p' "$W/out")
C="$BIN/ocibuild --root $W/c"
if $C pull --ca-cert "$W/ca.pem" "$R/team/tiny:1" >"$W/out" 2>&1 && grep -q "Digest: $want" "$W/out"; then
  pass "pull over HTTPS with --ca-cert gets the pushed digest"
else
  fail "pull with --ca-cert"; cat "$W/out"
fi
$B tag tiny:1 "$R/team/insecure:1"
if $B push --insecure "$R/team/insecure:1" >"$W/out" 2>&1 && grep -q "1: digest:" "$W/out"; then
  pass "--insecure: HTTPS without verification"
else
  fail "--insecure push"; cat "$W/out"
fi
mkdir -p "$XDG_CONFIG_HOME/ocibuild"
printf '{"insecure-registries": ["%s"]}\n' "$R" > "$XDG_CONFIG_HOME/ocibuild/config.json"
D="$BIN/ocibuild --root $W/d"
if $D pull "$R/team/insecure:1" >"$W/out" 2>&1; then
  pass "insecure-registries in ~/.config/ocibuild/config.json"
else
  fail "config insecure-registries"; cat "$W/out"
fi
rm "$XDG_CONFIG_HOME/ocibuild/config.json"
$B tag tiny:1 "127.0.0.1:$P/team/plain:1"
if $B push --insecure "127.0.0.1:$P/team/plain:1" >"$W/out" 2>&1 && grep -q "1: digest:" "$W/out"; then
  pass "--insecure against a plain-HTTP registry falls back to HTTP"
else
  fail "--insecure fallback"; cat "$W/out"
fi
if $B push --ca-cert "$W/nonexistent.pem" "$R/team/tiny:1" >"$W/out" 2>&1; then fail "missing CA file accepted"; else
  grep -q "does not exist" "$W/out" && pass "a missing --ca-cert file is a clear error" || { fail "missing CA message"; cat "$W/out"; }
fi

# Progress: bars with bytes and speed on a terminal, plain lines otherwise.
# Fresh images, so the layers are sent rather than mounted.
newimage() {  # newimage ROOT REF
  head -c 20000000 /dev/urandom > "$W/rootfs/etc/blob"
  tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
  "$BIN/ocibuild" --root "$1" import "$W/rootfs.tar" "$2" >/dev/null 2>&1 || fail "import $2"
}
if command -v script >/dev/null; then
  newimage "$W/f" "127.0.0.1:$P/team/bars:1"
  script -qec "$BIN/ocibuild --root $W/f push 127.0.0.1:$P/team/bars:1" /dev/null > "$W/tty.out" 2>&1
  grep -q 'Pushing \[' "$W/tty.out" && grep -qE '[0-9.]+[kMG]?B/s' "$W/tty.out" && grep -q $'\x1b\[' "$W/tty.out" &&
    pass "on a terminal, push draws progress bars with bytes and speed" || { fail "progress bars"; cat -v "$W/tty.out"; }
  E="$BIN/ocibuild --root $W/e"
  script -qec "$E pull 127.0.0.1:$P/team/bars:1" /dev/null > "$W/tty.out" 2>&1
  grep -q 'Downloading \[' "$W/tty.out" && grep -q 'Pull complete' "$W/tty.out" &&
    pass "on a terminal, pull draws progress bars" || { fail "pull progress bars"; cat -v "$W/tty.out"; }
fi
newimage "$W/g" "127.0.0.1:$P/team/lines:1"
"$BIN/ocibuild" --root "$W/g" push "127.0.0.1:$P/team/lines:1" > "$W/plain.out" 2>&1
! grep -q $'\x1b' "$W/plain.out" && ! grep -q 'Pushing \[' "$W/plain.out" && grep -q ': Pushed$' "$W/plain.out" &&
  pass "without a terminal, push prints plain lines" || { fail "plain lines"; cat -v "$W/plain.out"; }

finish

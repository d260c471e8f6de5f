#!/usr/bin/env bash
# ocireg on a team's network (issue 13): TLS (verification, TLS 1.2
# minimum, expired and foreign certificates refused, reload on SIGHUP
# without dropping connections, client certificates), htpasswd users,
# ocireg's own token server, tokens from a third-party issuer (PyJWT),
# the ACL (403 DENIED, filtered catalog, mount only from pullable
# repositories), reloads without restart, the login throttle, the
# read-only switch and the audit log. Clients: curl, skopeo, ocibuild,
# PyJWT, and Distribution 2.8, which must accept ocireg's tokens.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../script_lib.sh"
test_workdir regauth
PY=/usr/bin/python3
ISSUER="$PY $HERE/issuer.py"
S="skopeo --insecure-policy"
# (Not REGISTRY_AUTH_FILE: Distribution reads REGISTRY_* as its config.)
export DOCKER_CONFIG="$W/docker-config" XDG_RUNTIME_DIR="$W/xdg"
mkdir -p "$XDG_RUNTIME_DIR"
cd "$W" || exit 1

q() { "$@" >/dev/null 2>&1; }
expect() {  # expect DESCRIPTION WANT GOT
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: want [$2], got [$3]"; fi
}
has() {  # has DESCRIPTION PATTERN FILE
  if grep -qE -- "$2" "$3"; then pass "$1"; else fail "$1: no /$2/ in $3"; sed 's/^/    /' "$3" | tail -5; fi
}
code() { curl -s -o "$W/body" -D "$W/headers" -w '%{http_code}' "$@"; }
header() { tr -d '\r' < "$W/headers" | awk -v k="$1" 'BEGIN{IGNORECASE=1} tolower($0) ~ "^"tolower(k)": " {sub(/^[^:]*: /, ""); print}'; }
flush() { sleep 0.3; }  # the access log is flushed every 100 ms

# --- certificates: a CA, server certificates, a foreign CA, a client CA --
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.pem
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=client-ca -keyout client-ca.key -out client-ca.pem
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
server_cert() {  # server_cert NAME CN CA
  q openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
  q openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 -extfile san.ext -out "$1.pem"
}
server_cert server 127.0.0.1 ca
server_cert reloaded reloaded-cert ca
server_cert foreign 127.0.0.1 other
q openssl req -newkey rsa:2048 -nodes -subj /CN=ci-bot -keyout client.key -out client.csr
q openssl x509 -req -in client.csr -CA client-ca.pem -CAkey client-ca.key -CAcreateserial -days 2 -out client.pem
q openssl req -newkey rsa:2048 -nodes -subj /CN=ci-bot -keyout rogue.key -out rogue.csr
q openssl x509 -req -in rogue.csr -CA other.pem -CAkey other.key -CAcreateserial -days 2 -out rogue.pem
$ISSUER expired-cert ca.pem ca.key server.key expired.pem
mkdir -p certs.d && cp ca.pem certs.d/ca.crt          # skopeo --cert-dir
# The token server's key and a self-signed certificate for it (the root
# Distribution is given to trust).
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out token.key
q openssl req -x509 -new -key token.key -nodes -days 2 -subj /CN=ocireg-token -out token.pem
# A third-party issuer's keys: RSA (certificate in a bundle), P-256
# (x5c chain from the test CA), Ed25519 (a JWKS).
q openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=py-issuer -keyout iss-rsa.key -out iss-rsa.pem
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out iss-ec.key
q openssl req -new -key iss-ec.key -subj /CN=py-issuer-ec -out iss-ec.csr
q openssl x509 -req -in iss-ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out iss-ec.pem
q openssl genpkey -algorithm ED25519 -out iss-ed.key
$ISSUER jwks iss-ed.key ed-key-1 > iss.jwks
cat iss-rsa.pem ca.pem > iss-roots.pem
[ -s server.pem ] && [ -s expired.pem ] && [ -s iss.jwks ] && pass "certificates and keys made" || { fail "make certificates"; finish; exit 1; }

# --- users and the ACL ------------------------------------------------------
htpasswd -Bbn -C 10 alice s3cret > htpasswd 2>/dev/null
htpasswd -Bbn -C 10 bob b0b-pw >> htpasswd 2>/dev/null
cat > acl.json <<'JSON'
{"groups": {"admins": ["alice"]},
 "rules": [
  {"groups": ["admins"], "actions": ["admin"]},
  {"repository": "team/*", "users": ["bob"], "actions": ["pull"]},
  {"repository": "public/**", "anonymous": true, "actions": ["pull"]},
  {"repository": "bots/**", "users": ["ci-bot"], "actions": ["pull", "push"]},
  {"users": ["*"], "actions": ["catalog"]}]}
JSON

# start NAME CONFIG-JSON: ocireg with that config; sets P_NAME, PID_NAME.
start() {
  local name="$1"
  printf '%s\n' "$2" > "$name.json"
  rm -f "$name.port"
  "$BIN/ocireg" serve --config "$name.json" --port-file "$name.port" >"$name.log" 2>"$name.err" &
  local pid=$!
  PIDS+=("$pid")
  local i
  for i in $(seq 200); do [ -s "$name.port" ] && break; sleep 0.05; done
  eval "P_$name=$(cat "$name.port" 2>/dev/null || echo 0)"
  eval "PID_$name=$pid"
}
TLS='"cert_file": "'$W'/server.pem", "key_file": "'$W'/server.key"'
start tok '{"listen": "127.0.0.1:0", "root": "'$W'/tok-store", "tls": {'"$TLS"'},
  "auth": {"htpasswd": {"path": "'$W'/htpasswd"}, "acl_file": "'$W'/acl.json", "max_failures": 10,
           "token_server": {"key_file": "'$W'/token.key"}}}'
TOK=127.0.0.1:$P_tok
[ "$P_tok" != 0 ] && pass "ocireg with TLS, htpasswd, token server and ACL starts" || { fail "start tok"; cat tok.err; finish; exit 1; }
has "startup names https and authentication" 'listening on https://127.0.0.1:[0-9]+, .*authentication on' tok.err

# --- TLS --------------------------------------------------------------------
expect "GET /v2/ over TLS verified against the test CA" 401 "$(code --cacert ca.pem https://$TOK/v2/)"
curl -s --cacert other.pem "https://$TOK/v2/" >/dev/null 2>&1; expect "a client trusting another CA refuses the certificate (curl 60)" 60 $?
q openssl s_client -connect "$TOK" -tls1_1 </dev/null; r=$?
[ $r -ne 0 ] && pass "TLS 1.1 is refused" || fail "TLS 1.1 handshake succeeded"
openssl s_client -connect "$TOK" -CAfile ca.pem </dev/null 2>/dev/null > s_client.out
has "TLS 1.3 is negotiated by default" 'TLSv1.3' s_client.out
rm -f body; code "http://$TOK/v2/" >/dev/null
[ ! -s body ] && pass "plain HTTP to the TLS port gets no HTTP answer" || fail "plain HTTP answered"

# --- the challenge and the token server -------------------------------------
code --cacert ca.pem "https://$TOK/v2/" >/dev/null
expect "anonymous /v2/ gets the Bearer challenge" \
  "Bearer realm=\"https://$TOK/token\",service=\"ocireg\"" "$(header WWW-Authenticate)"
has "401 body is UNAUTHORIZED" '"code":"UNAUTHORIZED"' body
code --cacert ca.pem "https://$TOK/v2/team/app/manifests/v1" >/dev/null
expect "a pull's challenge names its scope" \
  "Bearer realm=\"https://$TOK/token\",service=\"ocireg\",scope=\"repository:team/app:pull\"" "$(header WWW-Authenticate)"
expect "token server refuses a wrong password" 401 \
  "$(code --cacert ca.pem -u alice:wrong "https://$TOK/token?service=ocireg&scope=repository:team/app:pull")"
token() {  # token USER:PASS SCOPE...
  local creds="$1"; shift
  local args=() s
  for s in "$@"; do args+=(--data-urlencode "scope=$s"); done
  curl -s --cacert ca.pem -G -u "$creds" "https://$TOK/token" --data-urlencode service=ocireg "${args[@]}" |
    $PY -c 'import json,sys; print(json.load(sys.stdin).get("token",""))'
}
AT=$(token alice:s3cret repository:team/app:pull,push)
[ -n "$AT" ] && pass "alice gets a token" || fail "alice's token"
claims=$(echo "$AT" | cut -d. -f2 | $PY -c 'import sys,base64,json; s=sys.stdin.read().strip(); print(json.dumps(json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))["access"]))')
expect "alice's token grants what she asked" '[{"actions": ["pull", "push"], "name": "team/app", "type": "repository"}]' "$claims"
BT=$(token bob:b0b-pw repository:team/app:pull,push)
claims=$(echo "$BT" | cut -d. -f2 | $PY -c 'import sys,base64,json; s=sys.stdin.read().strip(); print(json.dumps(json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))["access"]))')
expect "bob's token holds only pull (the ACL)" '[{"actions": ["pull"], "name": "team/app", "type": "repository"}]' "$claims"
expect "the token's kid is the libtrust ID of the key (computed by PyJWT's side)" \
  "$($ISSUER kid token.key)" "$(echo "$AT" | cut -d. -f1 | $PY -c 'import sys,base64,json; s=sys.stdin.read().strip(); print(json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))["kid"])')"

# --- push and pull with skopeo through the token server ---------------------
mkdir -p rootfs/etc && echo "auth test" > rootfs/etc/hello && head -c 200000 /dev/urandom > rootfs/etc/blob
tar -C rootfs -cf rootfs.tar .
"$BIN/ocibuild" --root "$W/ob" import rootfs.tar tiny:1 >/dev/null 2>&1
"$BIN/ocibuild" --root "$W/ob" save -o tiny.tar tiny:1 >/dev/null 2>&1
SK_TLS="--dest-cert-dir $W/certs.d"
if $S copy $SK_TLS --dest-creds alice:s3cret docker-archive:tiny.tar "docker://$TOK/team/app:v1" >sk.out 2>&1; then
  pass "skopeo pushes as alice over verified TLS (Bearer from the token server)"
else fail "skopeo push as alice"; tail -3 sk.out; fi
q $S copy $SK_TLS --dest-creds alice:s3cret docker-archive:tiny.tar "docker://$TOK/secret/x:v1"
q $S copy $SK_TLS --dest-creds alice:s3cret docker-archive:tiny.tar "docker://$TOK/public/base:v1"
$S inspect --cert-dir "$W/certs.d" --creds bob:b0b-pw "docker://$TOK/team/app:v1" >sk.out 2>&1 &&
  pass "bob (pull only) inspects team/app" || { fail "bob inspect"; tail -3 sk.out; }
if $S copy $SK_TLS --dest-creds bob:b0b-pw docker-archive:tiny.tar "docker://$TOK/team/bob:v1" >sk.out 2>&1; then
  fail "bob pushed without push permission"
else has "bob's push is refused (denied)" 'denied|unauthorized|authentication required' sk.out; fi
$S inspect --cert-dir "$W/certs.d" --creds bob:b0b-pw "docker://$TOK/secret/x:v1" >sk.out 2>&1 &&
  fail "bob read secret/x" || pass "bob cannot pull secret/x"
$S inspect --cert-dir "$W/certs.d" --no-creds "docker://$TOK/public/base:v1" >sk.out 2>&1 &&
  pass "anonymous pull of public/base (anonymous token)" || { fail "anonymous public pull"; tail -3 sk.out; }
$S inspect --cert-dir "$W/certs.d" --no-creds "docker://$TOK/team/app:v1" >sk.out 2>&1 &&
  fail "anonymous read team/app" || pass "anonymous pull of team/app refused"

# --- 403 and insufficient_scope with tokens ---------------------------------
DIG=$(curl -s --cacert ca.pem -H "Authorization: Bearer $AT" -o /dev/null -D - \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "https://$TOK/v2/team/app/manifests/v1" |
  tr -d '\r' | awk 'tolower($1)=="docker-content-digest:"{print $2}')
[ -n "$DIG" ] && pass "manifest GET with alice's token" || fail "manifest GET with token"
expect "bob's token: DELETE is 403" 403 "$(code --cacert ca.pem -X DELETE -H "Authorization: Bearer $BT" "https://$TOK/v2/team/app/manifests/$DIG")"
has "403 body is DENIED" '"code":"DENIED"' body
expect "bob's token: upload is 403" 403 "$(code --cacert ca.pem -X POST -H "Authorization: Bearer $BT" "https://$TOK/v2/team/app/blobs/uploads/")"
expect "alice's team/app token on secret/x: 401 (a wider token is to be had)" 401 \
  "$(code --cacert ca.pem -H "Authorization: Bearer $AT" "https://$TOK/v2/secret/x/tags/list")"
has "... with error=insufficient_scope" 'error="insufficient_scope"' headers
BC=$(token bob:b0b-pw registry:catalog:*)
code --cacert ca.pem -H "Authorization: Bearer $BC" "https://$TOK/v2/_catalog" >/dev/null
expect "bob's catalog lists only what he may pull" '{"repositories":["public/base","team/app"]}' "$(cat body)"
AC=$(token alice:s3cret registry:catalog:*)
code --cacert ca.pem -H "Authorization: Bearer $AC" "https://$TOK/v2/_catalog" >/dev/null
expect "alice's catalog lists everything" '{"repositories":["public/base","secret/x","team/app"]}' "$(cat body)"
expect "Basic credentials work on the API too (curl -u)" 200 "$(code --cacert ca.pem -u alice:s3cret "https://$TOK/v2/team/app/tags/list")"

# --- tokens that must be refused -----------------------------------------
OLD=$($ISSUER token token.key ES256 ocireg ocireg alice repository:team/app:pull --exp-in -60)
expect "an expired token is refused" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $OLD" "https://$TOK/v2/team/app/tags/list")"
has "... as invalid_token" 'error="invalid_token"' headers
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out forger.key
FORGED=$($ISSUER token forger.key ES256 ocireg ocireg alice repository:team/app:pull --kid "$($ISSUER kid token.key)")
expect "a token signed by another key under ocireg's kid is refused" 401 \
  "$(code --cacert ca.pem -H "Authorization: Bearer $FORGED" "https://$TOK/v2/team/app/tags/list")"
WRONGAUD=$($ISSUER token token.key ES256 ocireg other-service alice repository:team/app:pull)
expect "a token for another service is refused" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $WRONGAUD" "https://$TOK/v2/team/app/tags/list")"
GOOD=$($ISSUER token token.key ES256 ocireg ocireg alice repository:team/app:pull)
expect "the same token, correctly made by PyJWT with ocireg's key, is taken" 200 \
  "$(code --cacert ca.pem -H "Authorization: Bearer $GOOD" "https://$TOK/v2/team/app/tags/list")"

# --- OAuth2 POST /token (docker login's form) ------------------------------
curl -s --cacert ca.pem -X POST "https://$TOK/token" -d grant_type=password -d username=alice -d password=s3cret \
  -d service=ocireg -d client_id=test -d access_type=offline -d 'scope=repository:team/app:pull' > post.json
RT=$($PY -c 'import json; print(json.load(open("post.json")).get("refresh_token",""))')
[ -n "$RT" ] && pass "POST /token (password grant, offline) returns a refresh token" || { fail "refresh token"; cat post.json; }
curl -s --cacert ca.pem -X POST "https://$TOK/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$RT" \
  -d service=ocireg -d client_id=test -d 'scope=repository:team/app:pull' > post2.json
RAT=$($PY -c 'import json; print(json.load(open("post2.json")).get("access_token",""))')
expect "the refresh grant's access token works" 200 "$(code --cacert ca.pem -H "Authorization: Bearer $RAT" "https://$TOK/v2/team/app/tags/list")"
expect "a refresh token is not an access token" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $RT" "https://$TOK/v2/team/app/tags/list")"
expect "POST /token with a wrong password: 401" 401 "$(code --cacert ca.pem -X POST "https://$TOK/token" -d grant_type=password -d username=alice -d password=nope -d service=ocireg)"

# --- cross-repository mount needs pull on the source ------------------------
LAYER=$(curl -s --cacert ca.pem -u alice:s3cret -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "https://$TOK/v2/secret/x/manifests/v1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
# bob may push to team/* once the ACL says so (a reload without restart).
sed -i 's|{"repository": "team/\*", "users": \["bob"\], "actions": \["pull"\]}|{"repository": "team/*", "users": ["bob"], "actions": ["pull", "push"]}|' acl.json
grep -q '"pull", "push"\]}' acl.json && sleep 1.2
expect "ACL reload: bob may now push to team/* (upload starts)" 202 \
  "$(code --cacert ca.pem -u bob:b0b-pw -X POST "https://$TOK/v2/team/bob/blobs/uploads/")"
expect "bob's mount from secret/x (no pull there) falls back to an upload" 202 \
  "$(code --cacert ca.pem -u bob:b0b-pw -X POST "https://$TOK/v2/team/bob/blobs/uploads/?mount=$LAYER&from=secret/x")"
expect "alice's mount from secret/x is done at once" 201 \
  "$(code --cacert ca.pem -u alice:s3cret -X POST "https://$TOK/v2/team/bob/blobs/uploads/?mount=$LAYER&from=secret/x")"

# --- htpasswd reload --------------------------------------------------------
expect "carol is unknown" 401 "$(code --cacert ca.pem -u carol:c4rol "https://$TOK/v2/_catalog")"
htpasswd -Bb -C 10 htpasswd carol c4rol 2>/dev/null
sleep 1.2
expect "htpasswd reload: carol logs in without a restart" 200 "$(code --cacert ca.pem -u carol:c4rol "https://$TOK/v2/_catalog")"
expect "... and lists an empty catalog (no pull anywhere but public)" '{"repositories":["public/base"]}' "$(cat body)"

# --- the audit and access logs ----------------------------------------------
flush
has "audit line for alice's push of team/app:v1" 'audit push-manifest user=alice client=127.0.0.1:[0-9]+ repository=team/app reference=v1 digest=sha256:[0-9a-f]{64}' tok.log
has "audit line for a pushed blob" 'audit push-blob user=alice .* repository=team/app ' tok.log
has "access log names the user and the User-Agent" '127.0.0.1:[0-9]+ alice "PUT /v2/team/app/manifests/v1" 201 .*"skopeo/' tok.log
has "access log: anonymous is -" '127.0.0.1:[0-9]+ - "GET /v2/" 401' tok.log
n=$(grep -c -e 's3cret' -e 'b0b-pw' -e "$AT" tok.log tok.err | awk -F: '{s+=$2} END{print s}')
expect "no password or token in the logs" 0 "$n"

# --- Distribution 2.8 accepts ocireg's tokens --------------------------------
if command -v docker-registry >/dev/null; then
  DP=$(free_port)
  cat > dist.yml <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/dist}}
auth:
  token:
    realm: https://$TOK/token
    service: ocireg
    issuer: ocireg
    rootcertbundle: $W/token.pem
http: {addr: 127.0.0.1:$DP}
YML
  docker-registry serve dist.yml >dist.log 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$DP/v2/" && break; sleep 0.1; done
  # skopeo gets Distribution's challenge, fetches a token from ocireg's
  # token server and presents it to Distribution.
  if $S copy --dest-tls-verify=false --dest-creds alice:s3cret docker-archive:tiny.tar "docker://127.0.0.1:$DP/team/app:v1" >sk.out 2>&1; then
    pass "Distribution 2.8 accepts ocireg's ES256 tokens (push through ocireg's token server)"
  else fail "push to Distribution with ocireg's tokens"; tail -3 sk.out; tail -5 dist.log; fi
  $S copy --dest-tls-verify=false --dest-creds bob:b0b-pw docker-archive:tiny.tar "docker://127.0.0.1:$DP/secret/y:v1" >sk.out 2>&1 &&
    fail "Distribution took bob's push to secret/ (ocireg's ACL did not apply)" || pass "ocireg's ACL limits what Distribution lets bob do"
else
  fail "docker-registry not installed"
fi

# --- a third-party issuer's tokens (PyJWT) ----------------------------------
start ext '{"listen": "127.0.0.1:0", "root": "'$W'/ext-store", "tls": {'"$TLS"'},
  "auth": {"token": {"realm": "https://issuer.example/token", "service": "ext-registry", "issuer": "py-issuer",
           "rootcertbundle": "'$W'/iss-roots.pem", "jwks": "'$W'/iss.jwks"}}}'
EXT=127.0.0.1:$P_ext
code --cacert ca.pem "https://$EXT/v2/team/app/tags/list" >/dev/null
expect "external token auth: the challenge points at the issuer" \
  'Bearer realm="https://issuer.example/token",service="ext-registry",scope="repository:team/app:pull"' "$(header WWW-Authenticate)"
for spec in "RS256 iss-rsa.key" "ES256 iss-ec.key --nokid --x5c iss-ec.pem" "EdDSA iss-ed.key --kid ed-key-1"; do
  set -- $spec
  alg=$1 key=$2; shift 2
  T=$($ISSUER token "$key" "$alg" py-issuer ext-registry dave "repository:team/app:pull,push" "$@")
  expect "PyJWT $alg token ($*): upload allowed" 202 "$(code --cacert ca.pem -X POST -H "Authorization: Bearer $T" "https://$EXT/v2/team/app/blobs/uploads/")"
  expect "PyJWT $alg token: another repository is insufficient_scope" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $T" "https://$EXT/v2/other/app/tags/list")"
done
T=$($ISSUER token iss-rsa.key RS256 someone-else ext-registry dave "repository:team/app:pull")
expect "a token from another issuer is refused" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $T" "https://$EXT/v2/team/app/tags/list")"
T=$($ISSUER token forger.key ES256 py-issuer ext-registry dave "repository:team/app:pull" --nokid --x5c iss-ec.pem)
expect "an x5c chain whose key did not sign is refused" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $T" "https://$EXT/v2/team/app/tags/list")"
T=$($ISSUER token iss-rsa.key RS256 py-issuer ext-registry dave "repository:team/app:pull" --nokid)
expect "a token naming no key is refused" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $T" "https://$EXT/v2/team/app/tags/list")"

# --- Basic auth, ocibuild, read-only ----------------------------------------
BASIC_CFG='{"listen": "127.0.0.1:0", "root": "'$W'/basic-store", "tls": {'"$TLS"'},
  "auth": {"realm": "team", "htpasswd": {"path": "'$W'/htpasswd"}, "acl_file": "'$W'/acl.json"}READONLY}'
start basic "${BASIC_CFG/READONLY/}"
BAS=127.0.0.1:$P_basic
code --cacert ca.pem "https://$BAS/v2/" >/dev/null
expect "Basic mode: /v2/ challenges anonymous callers (so logins check passwords)" 'Basic realm="team"' "$(header WWW-Authenticate)"
expect "Basic mode: anonymous may read public/ (the ACL)" 404 "$(code --cacert ca.pem "https://$BAS/v2/public/none/tags/list")"
has "... where a missing repository is NAME_UNKNOWN" NAME_UNKNOWN body
expect "Basic mode: anonymous may not read team/" 401 "$(code --cacert ca.pem "https://$BAS/v2/team/app/tags/list")"
expect "empty Basic credentials count as anonymous" 404 "$(code --cacert ca.pem -H 'Authorization: Basic Og==' "https://$BAS/v2/public/none/tags/list")"
OB="$BIN/ocibuild --root $W/ob"
$OB tag tiny:1 "$BAS/team/app:v2" >/dev/null
if $OB push --ca-cert ca.pem "$BAS/team/app:v2" >ob.out 2>&1; then fail "ocibuild pushed without login"; else
  has "ocibuild push without login fails in one line" 'unauthorized|authentication required' ob.out; fi
echo wrong | $OB login --ca-cert ca.pem "$BAS" -u alice --password-stdin >ob.out 2>&1 &&
  fail "login with a wrong password succeeded" || pass "ocibuild login with a wrong password fails"
echo s3cret | $OB login --ca-cert ca.pem "$BAS" -u alice --password-stdin >ob.out 2>&1 &&
  pass "ocibuild login (Basic) over TLS" || { fail "ocibuild login"; cat ob.out; }
$OB push --ca-cert ca.pem "$BAS/team/app:v2" >ob.out 2>&1 && pass "ocibuild push with Basic" || { fail "ocibuild push Basic"; tail -3 ob.out; }
"$BIN/ocibuild" --root "$W/ob2" pull --ca-cert ca.pem "$BAS/team/app:v2" >ob.out 2>&1 &&
  pass "ocibuild pull with Basic" || { fail "ocibuild pull Basic"; tail -3 ob.out; }
echo s3cret | $OB login --ca-cert ca.pem "$TOK" -u alice --password-stdin >ob.out 2>&1 &&
  pass "ocibuild login through the token server (Bearer)" || { fail "ocibuild login Bearer"; cat ob.out; }
$OB tag tiny:1 "$TOK/team/ob:v1" >/dev/null
$OB push --ca-cert ca.pem "$TOK/team/ob:v1" >ob.out 2>&1 && pass "ocibuild push with Bearer" || { fail "ocibuild push Bearer"; tail -3 ob.out; }
"$BIN/ocibuild" --root "$W/ob3" pull --ca-cert ca.pem "$TOK/team/ob:v1" >ob.out 2>&1 &&
  pass "ocibuild pull with Bearer" || { fail "ocibuild pull Bearer"; tail -3 ob.out; }
$OB logout "$BAS" >/dev/null 2>&1
"$BIN/ocibuild" --root "$W/ob4" pull --ca-cert ca.pem "$BAS/team/app:v2" >ob.out 2>&1 &&
  fail "pull after logout succeeded" || pass "ocibuild pull after logout is refused"

# read_only on SIGHUP
printf '%s\n' "${BASIC_CFG/READONLY/, \"read_only\": true}" > basic.json
kill -HUP "$PID_basic"; sleep 0.5
expect "read-only after SIGHUP: a push is 405" 405 "$(code --cacert ca.pem -u alice:s3cret -X POST "https://$BAS/v2/team/app/blobs/uploads/")"
has "... UNSUPPORTED with a clear message" '"code":"UNSUPPORTED".*read-only' body
expect "read-only: pulls go on" 200 "$(code --cacert ca.pem -u alice:s3cret "https://$BAS/v2/team/app/tags/list")"
printf '%s\n' "${BASIC_CFG/READONLY/}" > basic.json
kill -HUP "$PID_basic"; sleep 0.5
expect "writable again after the next SIGHUP" 202 "$(code --cacert ca.pem -u alice:s3cret -X POST "https://$BAS/v2/team/app/blobs/uploads/")"

# --- certificate reload on SIGHUP, without dropping connections -------------
cp server.pem server.pem.orig; cp server.key server.key.orig
cp reloaded.pem server.pem; cp reloaded.key server.key  # read at the SIGHUP
out=$($ISSUER keepalive "$P_basic" ca.pem "$PID_basic" 2>&1)
expect "an open connection lives through the reload" "statuses 401 401 same-connection True" "$out"
openssl s_client -connect "$BAS" -CAfile ca.pem </dev/null 2>/dev/null | openssl x509 -noout -subject > subject.out 2>/dev/null
has "new connections get the reloaded certificate" 'CN ?= ?reloaded-cert' subject.out
cp foreign.pem server.pem; cp foreign.key server.key
kill -HUP "$PID_basic"; sleep 0.5
expect "a certificate from another CA after reload fails verification" 60 "$(curl -s -o /dev/null --cacert ca.pem "https://$BAS/v2/"; echo $?)"
echo "not a certificate" > server.pem
kill -HUP "$PID_basic"; sleep 0.5
has "a broken certificate file on reload is reported" 'reloaded: tls: cannot use the certificate' basic.err
[ "$(curl -s -o /dev/null -k -w '%{http_code}' "https://$BAS/v2/")" = 401 ] && pass "... and the previous certificate stays in use" || fail "server broken after bad reload"
cp server.pem.orig server.pem; cp server.key.orig server.key

# --- an expired certificate ---------------------------------------------------
start expired '{"listen": "127.0.0.1:0", "root": "'$W'/exp-store", "tls": {"cert_file": "'$W'/expired.pem", "key_file": "'$W'/server.key"}}'
curl -s -o /dev/null --cacert ca.pem "https://127.0.0.1:$P_expired/v2/" 2>curl.err; r=$?
expect "curl refuses an expired certificate" 60 "$r"
$S inspect --cert-dir "$W/certs.d" "docker://127.0.0.1:$P_expired/x/y:1" >sk.out 2>&1
has "skopeo refuses an expired certificate" 'expired' sk.out

# --- client certificates (mTLS) -------------------------------------------------
start mtls '{"listen": "127.0.0.1:0", "root": "'$W'/mtls-store", "tls": {'"$TLS"', "client_ca_file": "'$W'/client-ca.pem"},
  "auth": {"htpasswd": {"path": "'$W'/htpasswd"}, "acl_file": "'$W'/acl.json"}}'
MT=127.0.0.1:$P_mtls
curl -s -o /dev/null --cacert ca.pem "https://$MT/v2/"; r=$?
[ "$r" -ne 0 ] && pass "mTLS: no client certificate, no connection (curl $r)" || fail "mTLS let a client without certificate in"
curl -s -o /dev/null --cacert ca.pem --cert rogue.pem --key rogue.key "https://$MT/v2/"; r=$?
[ "$r" -ne 0 ] && pass "mTLS: a certificate from another CA is refused (curl $r)" || fail "mTLS took a foreign certificate"
expect "mTLS: the client certificate's CN is the user (ci-bot may push to bots/)" 202 \
  "$(code --cacert ca.pem --cert client.pem --key client.key -X POST "https://$MT/v2/bots/app/blobs/uploads/")"
expect "mTLS: ci-bot may not push elsewhere" 403 \
  "$(code --cacert ca.pem --cert client.pem --key client.key -X POST "https://$MT/v2/team/app/blobs/uploads/")"
flush
has "mTLS: the access log names ci-bot" '127.0.0.1:[0-9]+ ci-bot "POST /v2/bots/app/blobs/uploads/" 202' mtls.log

# --- the GC admin endpoint is for admins --------------------------------------
expect "POST /admin/gc anonymous: 401" 401 "$(code --cacert ca.pem -X POST "https://$TOK/admin/gc?dry_run=true")"
expect "POST /admin/gc as bob (no admin): 403" 403 "$(code --cacert ca.pem -u bob:b0b-pw -X POST "https://$TOK/admin/gc?dry_run=true")"
expect "POST /admin/gc as alice (admin): 200" 200 "$(code --cacert ca.pem -u alice:s3cret -X POST "https://$TOK/admin/gc?dry_run=true")"
has "... with the run's counters" '"dry_run":true,"repositories":[0-9]+' body

# --- hostile input to what auth added ------------------------------------------
expect "an absurd min_age (overflowing microseconds) is refused" 405 \
  "$(code --cacert ca.pem -u alice:s3cret -X POST "https://$TOK/admin/gc?dry_run=true&min_age=99999999999999d")"
head -c 200000 /dev/zero | tr '\0' a > big.form
expect "a 200 KB POST /token body: 413, not buffered" 413 "$(code --cacert ca.pem -X POST --data-binary @big.form "https://$TOK/token")"
expect "Basic credentials that are not base64: 401" 401 "$(code --cacert ca.pem -H 'Authorization: Basic !!!notbase64' "https://$TOK/v2/_catalog")"
expect "Basic without a colon: 401" 401 "$(code --cacert ca.pem -H "Authorization: Basic $(printf alice | base64)" "https://$TOK/v2/_catalog")"
expect "a 40 KB garbage Bearer token: 401" 401 "$(code --cacert ca.pem -H "Authorization: Bearer $(head -c 30000 /dev/urandom | base64 -w0 | head -c 40000)" "https://$TOK/v2/_catalog")"
expect "an unknown scheme: 401" 401 "$(code --cacert ca.pem -H 'Authorization: Digest x' "https://$TOK/v2/_catalog")"
expect "a header injected through the token's scope is not echoed" "" \
  "$(curl -s -D - -o /dev/null --cacert ca.pem "https://$TOK/v2/team/app%0d%0aX-Evil:1/tags/list" | tr -d '\r' | grep -i '^x-evil')"

# --- a warning when serving beyond loopback without TLS or auth ------------
"$BIN/ocireg" serve --listen 0.0.0.0:0 --root "$W/wide-store" --port-file wide.port >/dev/null 2>wide.err &
wide=$!
for i in $(seq 100); do [ -s wide.port ] && break; sleep 0.05; done
kill "$wide"; wait "$wide" 2>/dev/null
has "plain HTTP beyond loopback: a warning naming the risk" 'WARNING: serving plain HTTP on 0\.0\.0\.0: passwords, tokens and images cross the network unencrypted' wide.err
has "no authentication beyond loopback: a warning" 'WARNING: no authentication: anyone who can reach 0\.0\.0\.0 may push and delete' wide.err
grep -q WARNING tok.err && fail "a warning for a TLS registry with auth on loopback" || pass "no warning on loopback with TLS and auth"

# --- the mirror: auth applies to mirrored names; upstream credentials stay --
htpasswd -Bbn -C 10 upstream-user up-secret-pw > up.htpasswd 2>/dev/null
start up '{"listen": "127.0.0.1:0", "root": "'$W'/up-store", "auth": {"htpasswd": {"path": "'$W'/up.htpasswd"}}}'
q $S copy --dest-tls-verify=false --dest-creds upstream-user:up-secret-pw docker-archive:tiny.tar "docker://127.0.0.1:$P_up/library/tiny:v1"
cat > mirror-acl.json <<'JSON'
{"rules": [{"repository": "library/**", "users": ["bob"], "actions": ["pull"]},
           {"users": ["alice"], "actions": ["admin"]}]}
JSON
start mir '{"listen": "127.0.0.1:0", "root": "'$W'/mir-store", "tls": {'"$TLS"'},
  "proxy": {"upstreams": [{"url": "http://127.0.0.1:'$P_up'", "username": "upstream-user", "password": "up-secret-pw"}]},
  "auth": {"htpasswd": {"path": "'$W'/htpasswd"}, "acl_file": "'$W'/mirror-acl.json"}}'
MIR=127.0.0.1:$P_mir
expect "mirror: anonymous pull of a mirrored name is 401" 401 "$(code --cacert ca.pem "https://$MIR/v2/library/tiny/manifests/v1")"
expect "mirror: carol (no grant) gets 403" 403 "$(code --cacert ca.pem -u carol:c4rol "https://$MIR/v2/library/tiny/manifests/v1")"
expect "mirror: bob (pull on library/**) gets the mirrored manifest" 200 \
  "$(code --cacert ca.pem -u bob:b0b-pw -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "https://$MIR/v2/library/tiny/manifests/v1")"
UPB64=$(printf 'upstream-user:up-secret-pw' | base64)
if grep -q -e up-secret-pw -e "$UPB64" body headers; then fail "mirror: upstream credentials reached the client"; else
  pass "mirror: upstream credentials do not reach the client"; fi
$S inspect --cert-dir "$W/certs.d" --creds bob:b0b-pw "docker://$MIR/library/tiny:v1" >sk.out 2>&1 &&
  pass "mirror: skopeo pulls through the mirror as bob" || { fail "skopeo through the mirror"; tail -3 sk.out; }
flush
n=$(grep -c -e up-secret-pw -e "$UPB64" mir.log mir.err | awk -F: '{s+=$2} END{print s}')
expect "mirror: upstream credentials are not logged" 0 "$n"

# --- the login throttle (last: it locks out 127.0.0.1) -------------------------
expect "alice before the lockout" 200 "$(code --cacert ca.pem -u alice:s3cret "https://$TOK/v2/team/app/tags/list")"
for i in $(seq 10); do curl -s -o /dev/null --cacert ca.pem -u "eve$i:guess" "https://$TOK/v2/_catalog"; done
expect "after 10 failed logins from one address: 429" 429 "$(code --cacert ca.pem -u mallory:guess "https://$TOK/v2/_catalog")"
r=$(header Retry-After); [ -n "$r" ] && [ "$r" -gt 0 ] && pass "... with Retry-After ($r s)" || fail "no Retry-After"
has "... TOOMANYREQUESTS" '"code":"TOOMANYREQUESTS"' body
expect "a known-good credential still works during the lockout" 200 "$(code --cacert ca.pem -u alice:s3cret "https://$TOK/v2/team/app/tags/list")"

finish

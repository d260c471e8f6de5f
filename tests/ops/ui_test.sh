#!/usr/bin/env bash
# The web catalog (issue 15) in a real browser: headless Chromium from
# Debian, driven over the DevTools protocol (tests/ops/browser.py,
# ui_check.py), against registries seeded here: 120 repositories
# (pagination, search), an image with a history, labels, env, ports and an
# entrypoint carrying HTML, a signature referrer, a multi-platform index,
# and a second registry with users and an ACL (login; only what the user
# may pull). Screenshots of each page go to build/test-output/ui/. The
# JSON API is checked with curl too: escaping, auth, bad input.
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../interop/lib.sh"
set +e
W=$WORK
S="skopeo --insecure-policy"
cd "$W"
for tool in chromium htpasswd; do
  command -v $tool >/dev/null || { fail "$tool is not installed"; finish; exit 1; }
done
/usr/bin/python3 -c 'import websocket' 2>/dev/null || { fail "python3-websocket is not installed"; finish; exit 1; }

# --- an image with a history, in an OCI layout --------------------------------
python3 - "$W/app" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
lay = sys.argv[1]
os.makedirs(lay + "/blobs/sha256", exist_ok=True)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(lay + "/blobs/sha256/" + h, "wb").write(data)
    return "sha256:" + h, len(data)
def layer(name, content):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo(name); info.size = len(content); info.mtime = 0
        t.addfile(info, io.BytesIO(content))
    tar = raw.getvalue()
    return blob(gzip.compress(tar, mtime=0)), "sha256:" + hashlib.sha256(tar).hexdigest()
(l1, d1), (l2, d2) = layer("etc/base", b"base\n" * 1000), layer("hi", b"hi\n")
config = {
  "architecture": "amd64", "os": "linux", "created": "2026-01-02T03:04:05Z",
  "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh", "-c", "<img src=x onerror=window.__xss=1>"],
             "ExposedPorts": {"8080/tcp": {}}, "Labels": {"org.example.note": "<b>bold</b>"},
             "WorkingDir": "/srv"},
  "rootfs": {"type": "layers", "diff_ids": [d1, d2]},
  "history": [
    {"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:base in / "},
    {"created": "2026-01-01T00:00:01Z", "created_by": "/bin/sh -c #(nop)  ENV PATH=/bin", "empty_layer": True},
    {"created": "2026-01-02T03:04:05Z", "created_by": "RUN /bin/sh -c echo hi > /hi # buildkit", "comment": "buildkit.dockerfile.v0"}]}
c, cs = blob(json.dumps(config).encode())
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": cs},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s} for d, s in (l1, l2)]}
md, ms = blob(json.dumps(m).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": m["mediaType"], "digest": md, "size": ms,
           "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(lay + "/index.json", "w"))
open(lay + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
HISTORY=$(python3 -c 'import json; print(json.dumps([
  "RUN /bin/sh -c echo hi > /hi # buildkit", "/bin/sh -c #(nop)  ENV PATH=/bin", "/bin/sh -c #(nop) ADD file:base in / "]))')
make_multiarch_layout "$W/multi" v1 ui-multi

upload() {  # upload REG REPO FILE [CURL_AUTH...]
  local r=$1 repo=$2 f=$3; shift 3
  local loc; loc=$(curl -s "$@" -D - -o /dev/null -X POST "http://$r/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$loc" in http*) ;; *) loc="http://$r$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
  curl -sf "$@" -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$f" "${loc}digest=sha256:$(sha "$f")"
}
APP_DIGEST=sha256:$(python3 -c "import json; print(json.load(open('$W/app/index.json'))['manifests'][0]['digest'][7:])")
MULTI_DIGEST=sha256:$(python3 -c "import json; print(json.load(open('$W/multi/index.json'))['manifests'][0]['digest'][7:])")
seed() {  # seed REG [SKOPEO_CREDS] [CURL_AUTH...]
  local r=$1 creds=$2; shift 2
  $S copy --dest-tls-verify=false $creds "oci:$W/app:v1" "docker://$r/team/app:v1" >/dev/null &&
  $S copy --all --dest-tls-verify=false $creds "oci:$W/multi:v1" "docker://$r/team/multi:v1" >/dev/null || return 1
  echo '{}' > empty.json; echo "signature of $APP_DIGEST" > sig.bin
  upload "$r" team/app empty.json "$@" && upload "$r" team/app sig.bin "$@" || return 1
  local app_size; app_size=$(stat -c%s "$W/app/blobs/sha256/${APP_DIGEST#sha256:}")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":3},"layers":[{"mediaType":"application/vnd.example.sig","digest":"sha256:%s","size":%d}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}' \
    "$(sha empty.json)" "$(sha sig.bin)" "$(stat -c%s sig.bin)" "$APP_DIGEST" "$app_size" > ref.json
  curl -sf "$@" -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @ref.json "http://$r/v2/team/app/manifests/sha256:$(sha ref.json)"
}

start_registry r
R=$REG_r
check "seed team/app (with a signature) and team/multi" seed "$R" ""
"$BIN_DIR/http-load" populate "http://$R" -c 2 -r 120 -m 1 -l 1 -t 1 -o 0 > populate.out &&
  pass "120 more repositories: $(cat populate.out)" || fail "populate"

# --- the API with curl -----------------------------------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "http://$R/")" = 200 ] && [ "$(code "http://$R/ui/")" = 200 ] && pass "the page at / and /ui/" || fail "page"
h=$(curl -s -D - -o /dev/null "http://$R/ui/")
echo "$h" | grep -qi "^content-security-policy: default-src 'none'; script-src 'self'" &&
  echo "$h" | grep -qi '^x-content-type-options: nosniff' && pass "a strict Content-Security-Policy and nosniff" || fail "headers: $h"
[ "$(code -X POST "http://$R/ui/")" = 405 ] && pass "POST to the UI is 405" || fail "UI POST"
[ "$(code "http://$R/ui/api/repository?name=nope/nope")" = 404 ] && pass "an unknown repository is 404" || fail "unknown repo"
[ "$(code "http://$R/ui/api/image?name=team/app&digest=sha256:zz")" = 404 ] && pass "a bad digest is 404" || fail "bad digest"
[ "$(code "http://$R/ui/api/repositories?n=999999999999999999999")" = 200 ] && pass "a huge n is clamped" || fail "huge n"
c=$(code -X POST "http://$R/v2/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/blobs/uploads/")
[ "$c" = 400 ] && pass "a repository named with HTML cannot be created (NAME_INVALID, $c)" || fail "HTML name: $c"
curl -s "http://$R/ui/api/repositories?q=%3Cimg&n=10" | grep -q '"repositories":\[\]' && pass "...and is not listed" || fail "HTML name listed"
curl -s "http://$R/ui/api/image?name=team/app&digest=$APP_DIGEST" > image.json
python3 - image.json <<'PY' && pass "image JSON: config, 2 layers, 3 history rows, 1 referrer" || fail "image JSON: $(head -c 300 image.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["config"]["entrypoint"][2] == "<img src=x onerror=window.__xss=1>", j["config"]
assert len(j["layers"]) == 2 and len(j["history"]) == 3 and len(j["referrers"]) == 1, j
assert j["history"][0]["createdBy"].startswith("RUN") and j["history"][1]["emptyLayer"], j["history"]
PY

# A config with odd types (a history entry that is not an object,
# empty_layer a string, Env a number) still shows; sizes stay sane.
echo '{"architecture":"amd64","os":"linux","config":{"Env":7,"Labels":{"a":1}},"rootfs":{"type":"layers","diff_ids":[]},"history":["x",{"created_by":"odd","empty_layer":"yes"}]}' > odd.json
upload "$R" team/odd odd.json
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[]}' \
  "$(sha odd.json)" "$(stat -c%s odd.json)" > odd-manifest.json
c=$(code -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @odd-manifest.json "http://$R/v2/team/odd/manifests/v1")
c2=$(code "http://$R/ui/api/image?name=team/odd&digest=sha256:$(sha odd-manifest.json)")
c3=$(code "http://$R/ui/api/repository?name=team/odd")
[ "$c" = 201 ] && [ "$c2" = 200 ] && [ "$c3" = 200 ] && pass "a config with odd types still shows (PUT $c, image $c2, tags $c3)" ||
  fail "odd config: PUT $c, image $c2, tags $c3"

# --- a registry with users and an ACL -----------------------------------------
htpasswd -Bbn -C 10 alice alice-pw > htpasswd 2>/dev/null
htpasswd -Bbn -C 10 bob bob-pw >> htpasswd 2>/dev/null
htpasswd -Bbn -C 10 root root-pw >> htpasswd 2>/dev/null
cat > acl.json <<'JSON'
{"rules": [
  {"users": ["root"], "actions": ["pull", "push", "catalog", "admin"]},
  {"repository": "team/app", "users": ["alice"], "actions": ["pull"]},
  {"repository": "other/**", "users": ["bob"], "actions": ["pull"]}]}
JSON
echo "{\"auth\": {\"htpasswd\": {\"path\": \"$W/htpasswd\"}, \"acl_file\": \"$W/acl.json\"}}" > auth.json
start_registry a --config "$W/auth.json"
A=$REG_a
check "seed the registry with auth" seed "$A" "--dest-creds root:root-pw" -u root:root-pw
[ "$(code "http://$A/ui/api/repositories")" = 200 ] && curl -s "http://$A/ui/api/repositories" | grep -q '"repositories":\[\]' &&
  pass "anonymous: the API lists nothing" || fail "anonymous API"
c=$(curl -s -D - -o /dev/null -u alice:wrong "http://$A/ui/api/repositories")
echo "$c" | grep -q '^HTTP/1.1 401' && ! echo "$c" | grep -qi '^www-authenticate' &&
  pass "a wrong password: 401 without a challenge (no browser prompt)" || fail "wrong password: $c"
curl -s -u alice:alice-pw "http://$A/ui/api/repositories" | grep -q '"repositories":\["team/app"\]' &&
  pass "alice's API view: team/app only" || fail "alice view"
[ "$(code -u alice:alice-pw "http://$A/ui/api/repository?name=team/multi")" = 404 ] &&
  pass "a repository alice may not pull is 404 to her" || fail "alice multi"

# --- the browser ---------------------------------------------------------------
SHOTS="$(cd "$BIN_DIR/.." && pwd)/test-output/ui"
rm -rf "$SHOTS"
REG="$R" AUTH_REG="$A" APP_DIGEST="$APP_DIGEST" MULTI_DIGEST="$MULTI_DIGEST" HISTORY="$HISTORY" \
  SHOTS="$SHOTS" CDP_PORT="$(free_port)" timeout 180 /usr/bin/python3 "$HERE/ui_check.py" > browser.out 2>&1
rc=$?
cat browser.out
PASSED=$((PASSED + $(grep -c '^ok: ' browser.out)))
FAILED=$((FAILED + $(grep -c '^FAIL: ' browser.out)))
[ $rc = 0 ] || { [ "$(grep -c '^FAIL: ' browser.out)" -gt 0 ] || fail "the browser run failed (rc $rc)"; }
finish

#!/usr/bin/env bash
# Our GC against the reference: the same content is pushed with skopeo and
# curl to ocireg and to Debian's Distribution 2.8 (docker-registry); both
# are stopped and collect (`ocireg gc --root`, `registry garbage-collect`),
# then restart, and every pushed blob and manifest is asked for in every
# repository on both. The answers must agree, save where Distribution is
# known to be wrong or does not know referrers:
#   - a referrer whose subject was deleted goes with it here (Distribution
#     2.8 keeps it: it has no referrers);
#   - with --delete-untagged, Distribution removes the children of a tagged
#     index (distribution#3178) and the referrers of a tagged image; we
#     keep both, and every difference must be one of these.
source "$(dirname "$0")/../interop/lib.sh"
set +e
W=$WORK
S="skopeo --insecure-policy"
cd "$W"
if ! command -v docker-registry >/dev/null; then
  fail "docker-registry (Distribution) is not installed"
  finish; exit 1
fi

# --- the content, as OCI layouts --------------------------------------------
make_layout "$W/a" v1 diff-a      # tagged in two repositories (shared)
make_layout "$W/b" v1 diff-b      # pushed, then its manifest deleted
make_layout "$W/c" v1 diff-c      # its tag moved to d: untagged
make_layout "$W/d" v1 diff-d
make_multiarch_layout "$W/m" v1 diff-m  # a tagged index of 2 images
head -c 3000 /dev/urandom > "$W/orphan.bin"   # uploaded, named by nothing
echo '{}' > "$W/empty.json"
manifest_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]+'/index.json'))['manifests'][0]['digest'])" "$1"; }
A=$(manifest_of "$W/a") B=$(manifest_of "$W/b")

# A signature-like referrer (OCI 1.1 subject) of SUBJECT, with its own blob.
make_referrer() {  # make_referrer SUBJECT SEED OUT
  echo "signature of $1 ($2)" > "$W/$2.sig"
  local sh; sh=$(sha "$W/$2.sig")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":3},"layers":[{"mediaType":"application/vnd.example.sig","digest":"sha256:%s","size":%d}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}' \
    "$(sha "$W/empty.json")" "$sh" "$(stat -c%s "$W/$2.sig")" "$1" \
    "$(stat -c%s "$W/a/blobs/sha256/${1#sha256:}" 2>/dev/null || stat -c%s "$W/b/blobs/sha256/${1#sha256:}")" > "$3"
}
make_referrer "$A" sig-a "$W/ref-a.json"
make_referrer "$B" sig-b "$W/ref-b.json"

upload() {  # upload REG REPO FILE: POST then PUT ?digest=
  local loc
  loc=$(curl -s -D - -o /dev/null -X POST "http://$1/v2/$2/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$loc" in http*) ;; *) loc="http://$1$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$3" "${loc}digest=sha256:$(sha "$3")"
}
put_manifest() {  # put_manifest REG REPO FILE
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$3" "http://$1/v2/$2/manifests/sha256:$(sha "$3")"
}

push_all() {  # push_all REG: the same operations, in the same order
  local r=$1 ok=0
  $S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$r/team/app:a" >/dev/null &&
  $S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$r/team/other:a" >/dev/null &&
  $S copy --dest-tls-verify=false "oci:$W/b:v1" "docker://$r/team/app:b" >/dev/null &&
  $S copy --dest-tls-verify=false "oci:$W/c:v1" "docker://$r/team/app:c" >/dev/null &&
  $S copy --dest-tls-verify=false "oci:$W/d:v1" "docker://$r/team/app:c" >/dev/null &&
  $S copy --all --dest-tls-verify=false "oci:$W/m:v1" "docker://$r/team/multi:v1" >/dev/null &&
  upload "$r" team/app "$W/empty.json" && upload "$r" team/app "$W/sig-a.sig" &&
  upload "$r" team/app "$W/sig-b.sig" && upload "$r" team/app "$W/orphan.bin" &&
  put_manifest "$r" team/app "$W/ref-a.json" && put_manifest "$r" team/app "$W/ref-b.json" &&
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$r/v2/team/app/manifests/$B")" = 202 ] && ok=1
  [ $ok = 1 ]
}

# Everything pushed: "manifest DIGEST" or "blob DIGEST" (a file is a
# manifest when it has mediaType and schemaVersion at its top).
: > "$W/pushed"
for f in "$W"/{a,b,c,d,m}/blobs/sha256/* "$W/ref-a.json" "$W/ref-b.json" "$W/empty.json" "$W/sig-a.sig" "$W/sig-b.sig" "$W/orphan.bin"; do
  if python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert 'schemaVersion' in j" "$f" 2>/dev/null; then
    echo "manifest sha256:$(sha "$f")"
  else
    echo "blob sha256:$(sha "$f")"
  fi
done | sort -u > "$W/pushed"

answers() {  # answers REG OUT: "repo kind digest status" for everything
  local r=$1 repo kind d code
  for repo in team/app team/other team/multi; do
    while read -r kind d; do
      if [ "$kind" = manifest ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' -I \
          -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
          "http://$r/v2/$repo/manifests/$d")
      else
        code=$(curl -s -o /dev/null -w '%{http_code}' -I "http://$r/v2/$repo/blobs/$d")
        # Distribution may answer HEAD from a link whose data GC removed:
        # a GET must fetch the bytes.
        [ "$code" = 200 ] && code=$(curl -s -o /dev/null -w '%{http_code}' "http://$r/v2/$repo/blobs/$d")
      fi
      echo "$repo $kind $d $code"
    done < "$W/pushed"
  done > "$2"
}

start_dist() {
  docker-registry serve "$W/dist.yml" >>"$W/dist.log" 2>&1 &
  DIST=$!
  PIDS+=("$DIST")
  local i
  for i in $(seq 200); do curl -sf "http://$DR/v2/" >/dev/null && break; sleep 0.05; done
}
DP=$(free_port)
DR=127.0.0.1:$DP
cat > "$W/dist.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $W/dist}
  delete: {enabled: true}
http: {addr: $DR, secret: differential}
YML
start_registry r
start_dist
check "the same content pushed to ocireg" push_all "$REG_r"
check "the same content pushed to Distribution" push_all "$DR"
answers "$REG_r" "$W/before.oci"
answers "$DR" "$W/before.dist"
if diff -q "$W/before.oci" "$W/before.dist" >/dev/null; then
  pass "before GC both answer alike for $(wc -l < "$W/before.oci") (repository, digest) pairs"
else
  fail "before GC the answers differ"; diff "$W/before.oci" "$W/before.dist" | head -20
fi

# collect MODE_FLAG...: stop both, collect with each tool, start both again.
collect() {
  stop_pid "$PID_r"; stop_pid "$DIST"
  "$BIN_DIR/ocireg" gc --root "$W/r/store" "$@" > "$W/gc.oci" 2>&1 ||
    { fail "ocireg gc $*"; cat "$W/gc.oci"; }
  local dflag=()
  [ "$#" -gt 0 ] && dflag=(--delete-untagged)
  docker-registry garbage-collect "${dflag[@]}" "$W/dist.yml" > "$W/gc.dist" 2>&1 ||
    { fail "registry garbage-collect ${dflag[*]}"; tail -5 "$W/gc.dist"; }
  start_registry r
  start_dist
}

# compare NAME ALLOWED: the answers after GC agree but for lines ALLOWED
# (a regex over "repo kind digest") where we keep (200) and Distribution
# removed (404) -- or, with ALLOWED_OURS_GONE, the reverse.
compare() {
  answers "$REG_r" "$W/$1.oci"
  answers "$DR" "$W/$1.dist"
  paste -d' ' "$W/$1.oci" "$W/$1.dist" | awk '$4 != $8 {print $1, $2, $3, "ocireg=" $4, "distribution=" $8}' > "$W/$1.diff"
  local gone_oci gone_dist
  gone_oci=$(grep -c ' 404$' "$W/$1.oci"); gone_dist=$(grep -c ' 404$' "$W/$1.dist")
  echo "    $1: ocireg answers 404 for $gone_oci pairs, Distribution for $gone_dist; $(wc -l < "$W/$1.diff") differ"
  sed 's/^/      /' "$W/$1.diff"
}
expect_diff() {  # expect_diff NAME DESCRIPTION: the differences are exactly the expected lines
  if diff <(sort "$W/$1.diff") <(sort "$W/$1.expected") >/dev/null; then
    pass "$2"
  else
    fail "$2"; diff <(sort "$W/$1.diff") <(sort "$W/$1.expected") | sed 's/^/    /' | head -20
  fi
}
manifest_blobs() {  # the config and layers a manifest file names
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('\n'.join([j['config']['digest']]+[l['digest'] for l in j['layers']]))" "$1"
}
layout_file() { ls "$W"/{a,b,c,d,m}/blobs/sha256/"${1#sha256:}" 2>/dev/null | head -1; }

# --- 1: default mode (untagged manifests are roots) --------------------------
collect
compare plain
# Expected: b's referrer and its signature blob go here, stay there.
RB=sha256:$(sha "$W/ref-b.json") SB=sha256:$(sha "$W/sig-b.sig")
{ echo "team/app manifest $RB ocireg=404 distribution=200"
  echo "team/app blob $SB ocireg=404 distribution=200"; } > "$W/plain.expected"
expect_diff plain "default mode: ocireg and Distribution keep and remove the same blobs and manifests, but for the referrer of the deleted manifest (it goes with its subject here)"
grep -q "team/app blob sha256:$(sha "$W/orphan.bin") 404" "$W/plain.oci" &&
  grep -q "team/app blob sha256:$(sha "$W/orphan.bin") 404" "$W/plain.dist" &&
  pass "both remove the blob named by no manifest" || fail "the orphan blob survived somewhere"
grep -q "team/app manifest $A 200" "$W/plain.oci" && grep -q "team/other manifest $A 200" "$W/plain.oci" &&
  pass "a, tagged in two repositories, stays in both" || fail "a was removed"

# --- 2: delete untagged --------------------------------------------------------
collect --delete-untagged
compare untagged
C=$(manifest_of "$W/c")
{ # Distribution removes the children of the tagged index (#3178) and the
  # blobs only they use, and a's referrer with its signature.
  IDX=$(layout_file "$(manifest_of "$W/m")")
  for child in $(python3 -c "import json,sys; print('\n'.join(m['digest'] for m in json.load(open(sys.argv[1]))['manifests']))" "$IDX"); do
    echo "team/multi manifest $child ocireg=200 distribution=404"
    for b in $(manifest_blobs "$(layout_file "$child")"); do
      echo "team/multi blob $b ocireg=200 distribution=404"
    done
  done
  echo "team/app manifest sha256:$(sha "$W/ref-a.json") ocireg=200 distribution=404"
  echo "team/app blob sha256:$(sha "$W/sig-a.sig") ocireg=200 distribution=404"
} > "$W/untagged.expected"
# The empty config blob: a's referrer, which only we keep, names it.
echo "team/app blob sha256:$(sha "$W/empty.json") ocireg=200 distribution=404" >> "$W/untagged.expected"
expect_diff untagged "delete-untagged: the answers differ only where Distribution removes a tagged index's children (distribution#3178) or a tagged image's referrer"
grep -q "team/app manifest $C 404" "$W/untagged.oci" && grep -q "team/app manifest $C 404" "$W/untagged.dist" &&
  pass "both remove c, untagged when its tag moved" || fail "c: $(grep "manifest $C" "$W/untagged.oci" "$W/untagged.dist")"
for ref in team/app:a team/other:a team/app:c; do
  check "$ref pulls from ocireg after both runs" $S copy --src-tls-verify=false "docker://$REG_r/$ref" "oci:$W/pulled:x"
done
check "team/multi:v1 (every platform) pulls from ocireg" $S copy --all --src-tls-verify=false "docker://$REG_r/team/multi:v1" "oci:$W/pulled-m:x"
finish

#!/usr/bin/env bash
# Online garbage collection in the running ocireg (issue 14), with skopeo
# as the client: what a deleted manifest alone used is reclaimed while
# shared layers stay; a tagged multi-arch index keeps its children under
# delete_untagged; a signature (referrer) of a tagged image stays and one
# of a deleted image goes; the grace window keeps young untagged
# manifests; a dry run removes nothing; an emptied repository leaves the
# catalog; `ocireg gc --root` on a stopped store; 20 clients pushing and
# re-pushing shared layers while GC loops with min_age 0 lose nothing;
# kill -9 during sweeps (20 times) leaves no record without bytes.
source "$(dirname "$0")/../interop/lib.sh"
set +e
W=$WORK
S="skopeo --insecure-policy"
cd "$W"

gc() {  # gc REG QUERY -> the JSON counters
  curl -s -X POST "http://$1/admin/gc?$2"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
blob_files() { find "$1/blobs" -type f 2>/dev/null | wc -l; }
pulls() {  # pulls REF: copies to an OCI layout (skopeo verifies every digest)
  rm -rf "$W/pulled" && $S copy --src-tls-verify=false "docker://$1" "oci:$W/pulled:x" >/dev/null 2>&1
}

# A pause between each repository's mark and sweep (a test hook) widens
# the window in which a concurrent push could race the collector.
export OCIREG_GC_TEST_SWEEP_DELAY_MS=5
start_registry r
unset OCIREG_GC_TEST_SWEEP_DELAY_MS
R=$REG_r
STORE="$W/r/store"

# --- reclaim what a deleted manifest alone used ---------------------------
make_layout "$W/a" v1 gc-a
make_layout "$W/b" v1 gc-b
$S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$R/team/app:a" >/dev/null
$S copy --dest-tls-verify=false "oci:$W/b:v1" "docker://$R/team/app:b" >/dev/null
$S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$R/team/other:a" >/dev/null  # shares a's layer
before=$(blob_files "$STORE")
BD=$($S inspect --tls-verify=false --raw "docker://$R/team/app:b" | sha256sum | cut -d' ' -f1)
expect_code() { [ "$2" = "$3" ] && pass "$1" || fail "$1: want $2, got $3"; }
expect_code "DELETE team/app:b's manifest" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://$R/v2/team/app/manifests/sha256:$BD")"
out=$(gc "$R" "min_age=0s&dry_run=true")
[ "$(echo "$out" | field blobs_deleted)" -ge 1 ] && pass "dry run counts what would go ($out)" || fail "dry run: $out"
[ "$(blob_files "$STORE")" = "$before" ] && pass "dry run removes nothing" || fail "dry run removed files"
out=$(gc "$R" "min_age=0s")
[ "$(echo "$out" | field blobs_deleted)" -ge 1 ] && [ "$(echo "$out" | field bytes_reclaimed)" -gt 0 ] &&
  pass "GC reclaims b's blobs ($out)" || fail "GC: $out"
[ "$(blob_files "$STORE")" -lt "$before" ] && pass "blob files went from $before to $(blob_files "$STORE")" || fail "no file removed"
pulls "$R/team/app:a" && pass "team/app:a still pulls and verifies" || fail "team/app:a broken after GC"
pulls "$R/team/other:a" && pass "team/other:a (shared layer) still pulls" || fail "team/other:a broken"
expect_code "b's manifest is gone" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/team/app/manifests/sha256:$BD")"
grep -q "ocireg: gc: .* blobs (.* bytes) reclaimed" "$W/r/server.log" && pass "the run is logged with its counters" || fail "no gc log line"

# --- usage per repository and namespace ---------------------------------------
curl -s "http://$R/admin/usage" > usage.json
python3 - "$W/usage.json" <<'PY' && pass "GET /admin/usage: per repository and namespace, app's bytes counted once in team" || fail "usage: $(cat usage.json)"
import json, sys
u = json.load(open(sys.argv[1]))
app, other, team = u["repositories"]["team/app"], u["repositories"]["team/other"], u["namespaces"]["team"]
assert app["bytes"] > 0 and other["bytes"] > 0, u
assert team["bytes"] < app["bytes"] + other["bytes"], u   # the shared layer once
assert u["total"]["bytes"] >= team["bytes"], u
PY
"$BIN_DIR/ocireg" du --root "$STORE" > du.out 2>&1 && grep -qE '^namespace +[0-9]+ +[0-9]+  team$' du.out &&
  grep -qE '^repository .* team/app$' du.out && pass "ocireg du beside the running server" || { fail "ocireg du"; cat du.out; }

# --- the grace window ---------------------------------------------------
make_layout "$W/c" v1 gc-c
CD=$($S copy --dest-tls-verify=false "oci:$W/c:v1" "docker://$R/team/young:c" >/dev/null; \
  $S inspect --tls-verify=false --raw "docker://$R/team/young:c" | sha256sum | cut -d' ' -f1)
curl -s -o /dev/null -X DELETE "http://$R/v2/team/young/manifests/sha256:$CD"
out=$(gc "$R" "min_age=1h")
[ "$(echo "$out" | field blobs_deleted)" = 0 ] && pass "min_age 1h: blobs touched a moment ago stay" || fail "grace window: $out"

# --- multi-arch children and referrers under delete_untagged -----------------
make_multiarch_layout "$W/m" v1 gc-multi
$S copy --all --dest-tls-verify=false "oci:$W/m:v1" "docker://$R/team/multi:v1" >/dev/null
IDX=$($S inspect --tls-verify=false --raw "docker://$R/team/multi:v1")
# An untagged manifest that nothing references (it must go).
make_layout "$W/u" v1 gc-untagged
UD=$(python3 -c "import json; print(json.load(open('$W/u/index.json'))['manifests'][0]['digest'])")
$S copy --dest-tls-verify=false "oci:$W/u:v1" "docker://$R/team/multi:tmp" >/dev/null
curl -s -o /dev/null -X DELETE "http://$R/v2/team/multi/manifests/tmp"  # the tag only: now untagged
# A signature of the tagged image: a manifest whose subject is it.
sig_push() {  # sig_push REPO SUBJECT_DIGEST SUBJECT_SIZE SUBJECT_MT -> digest
  printf 'signature of %s' "$2" > "$W/sig.txt"
  local sd; sd=sha256:$(sha256sum "$W/sig.txt" | cut -d' ' -f1)
  curl -s -o /dev/null -X POST "http://$R/v2/$1/blobs/uploads/?digest=$sd" --data-binary @"$W/sig.txt" -H 'Content-Type: application/octet-stream'
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.example.sig","digest":"%s","size":%d}],"subject":{"mediaType":"%s","digest":"%s","size":%d}}' \
    "$sd" "$(stat -c%s "$W/sig.txt")" "$4" "$2" "$3" > "$W/sigman.json"
  printf '{}' > "$W/empty.json"
  curl -s -o /dev/null -X POST "http://$R/v2/$1/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" --data-binary @"$W/empty.json" -H 'Content-Type: application/octet-stream'
  local md; md=sha256:$(sha256sum "$W/sigman.json" | cut -d' ' -f1)
  curl -s -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$W/sigman.json" "http://$R/v2/$1/manifests/$md"
  echo "$md"
}
IDXD=sha256:$(echo -n "$IDX" | sha256sum | cut -d' ' -f1)
KEEP_SIG=$(sig_push team/multi "$IDXD" "$(echo -n "$IDX" | wc -c)" application/vnd.oci.image.index.v1+json)
$S copy --dest-tls-verify=false "oci:$W/c:v1" "docker://$R/team/multi:doomed" >/dev/null
DOOMED=$($S inspect --tls-verify=false --raw "docker://$R/team/multi:doomed")
DOOMEDD=sha256:$(echo -n "$DOOMED" | sha256sum | cut -d' ' -f1)
GO_SIG=$(sig_push team/multi "$DOOMEDD" "$(echo -n "$DOOMED" | wc -c)" application/vnd.oci.image.manifest.v1+json)
curl -s -o /dev/null -X DELETE "http://$R/v2/team/multi/manifests/$DOOMEDD"
out=$(gc "$R" "min_age=0s&delete_untagged=true")
echo "    $out"
rm -rf "$W/pulled"
$S copy --all --src-tls-verify=false "docker://$R/team/multi:v1" "oci:$W/pulled:x" >/dev/null 2>&1 &&
  pass "delete_untagged keeps every child of the tagged index (all platforms pull)" || fail "index children lost"
expect_code "the tagged index's signature stays" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/team/multi/manifests/$KEEP_SIG")"
expect_code "the deleted image's signature goes" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/team/multi/manifests/$GO_SIG")"
expect_code "an untagged, unreferenced manifest goes" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R/v2/team/multi/manifests/$UD")"
refs=$(curl -s "http://$R/v2/team/multi/referrers/$IDXD" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["manifests"]))')
expect_code "referrers of the tagged index still list the signature" 1 "$refs"

# --- an emptied repository leaves the catalog --------------------------------
OD=$($S inspect --tls-verify=false --raw "docker://$R/team/other:a" | sha256sum | cut -d' ' -f1)
curl -s -o /dev/null -X DELETE "http://$R/v2/team/other/manifests/sha256:$OD"
gc "$R" "min_age=0s" >/dev/null
curl -s "http://$R/v2/_catalog" | grep -q '"team/other"' && fail "team/other still in the catalog" || pass "an emptied repository leaves the catalog after GC"
pulls "$R/team/app:a" && pass "team/app:a still pulls (its layer was shared with team/other)" || fail "team/app:a lost its layer"

# --- retention rules -------------------------------------------------------------
cat > "$W/ret.json" <<'JSON'
{"gc": {"interval": "0s"},
 "retention": [
   {"repository": "ret/count", "keep_newest": 2, "keep_tags": "^release-"},
   {"repository": "ret/age", "remove_older_than": "2s"},
   {"repository": "ret/untagged", "keep_untagged_for": "2s"},
   {"repository": "ret/**", "keep_newest": 0}
 ]}
JSON
start_registry ret --config "$W/ret.json"
RR=$REG_ret
push_tag() { $S copy --dest-tls-verify=false "oci:$W/$1:v1" "docker://$RR/$2" >/dev/null; }
tags_of() { curl -s "http://$RR/v2/$1/tags/list" | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin).get("tags") or [])))'; }
for t in release-1 t1 t2 t3 t4; do push_tag a "ret/count:$t"; sleep 0.05; done
push_tag a ret/age:old
push_tag c ret/untagged:gone && curl -s -o /dev/null -X DELETE "http://$RR/v2/ret/untagged/manifests/gone"
UG=$(python3 -c "import json; print(json.load(open('$W/c/index.json'))['manifests'][0]['digest'])")
sleep 2.5
push_tag a ret/age:new
push_tag b ret/untagged:young && curl -s -o /dev/null -X DELETE "http://$RR/v2/ret/untagged/manifests/young"
YG=$(python3 -c "import json; print(json.load(open('$W/b/index.json'))['manifests'][0]['digest'])")
out=$(gc "$RR" "min_age=0s&dry_run=true")
[ "$(echo "$out" | field tags_removed)" = 3 ] && [ "$(tags_of ret/count)" = "release-1 t1 t2 t3 t4" ] &&
  pass "retention dry run: 3 tags would go, none went" || fail "retention dry run: $out / $(tags_of ret/count)"
out=$(gc "$RR" "min_age=0s")
expect_code "keep_newest 2 + keep_tags ^release-: the newest two and release-1 stay" "release-1 t3 t4" "$(tags_of ret/count)"
expect_code "remove_older_than 2s: the old tag goes, the new stays" "new" "$(tags_of ret/age)"
expect_code "keep_untagged_for 2s: an untagged manifest older than that goes" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$RR/v2/ret/untagged/manifests/$UG")"
expect_code "... a younger one stays" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$RR/v2/ret/untagged/manifests/$YG")"
RR_ok=1; rm -rf "$W/pulled"; $S copy --src-tls-verify=false "docker://$RR/ret/count:t4" "oci:$W/pulled:x" >/dev/null 2>&1 || RR_ok=0
[ $RR_ok = 1 ] && pass "a retained tag still pulls after GC" || fail "retained tag broken"
grep -q "3 tags by retention" "$W/ret/server.log" && pass "the run logs tags removed by retention" || fail "no retention count in the log"
stop_pid "$PID_ret"
echo '{"retention": [{"keep_tags": "(["}]}' > "$W/bad-ret.json"
"$BIN_DIR/ocireg" serve --config "$W/bad-ret.json" --listen 127.0.0.1:0 --root "$W/badret" >/dev/null 2>"$W/err"; r=$?
[ $r -ne 0 ] && grep -q 'retention\[0\].*keep_tags is not a regular expression' "$W/err" && pass "a bad retention regex stops the server with the key named" || fail "bad regex: $(cat "$W/err")"

# --- quotas per namespace ---------------------------------------------------------
LAYER_A=$(stat -c%s "$W/a/blobs/sha256/"* | sort -n | tail -1)
cat > "$W/quota.json" <<JSON
{"gc": {"interval": "0s"}, "quotas": [{"namespace": "small", "bytes": $((LAYER_A + 4096))}]}
JSON
start_registry q --config "$W/quota.json"
QR=$REG_q
$S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$QR/small/one:v1" >/dev/null 2>"$W/q.err" &&
  pass "quota: an image within the namespace's quota pushes" || { fail "quota push within limit"; cat "$W/q.err"; }
$S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$QR/small/two:v1" >/dev/null 2>"$W/q.err" &&
  pass "quota: the same layers in another repository of the namespace cost nothing" || { fail "quota: shared layers refused"; cat "$W/q.err"; }
if $S copy --dest-tls-verify=false "oci:$W/b:v1" "docker://$QR/small/three:v1" >/dev/null 2>"$W/q.err"; then
  fail "quota: a push over the quota succeeded"
else
  grep -q "quota exceeded for namespace small: using .* of .*, this blob needs" "$W/q.err" &&
    pass "quota: a push over it fails with usage and limit in skopeo's output" || { fail "quota message"; cat "$W/q.err"; }
fi
files=$(blob_files "$W/q/store")
head -c 3000000 /dev/urandom > "$W/big.bin"
BIGD=sha256:$(sha256sum "$W/big.bin" | cut -d' ' -f1)
code=$(curl -s -o "$W/q.body" -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
  --data-binary @"$W/big.bin" "http://$QR/v2/small/four/blobs/uploads/?digest=$BIGD")
[ "$code" = 403 ] && grep -q '"code":"DENIED"' "$W/q.body" && [ "$(blob_files "$W/q/store")" = "$files" ] &&
  pass "quota: a monolithic upload over it is refused before any byte is stored" || fail "monolithic over quota: $code $(cat "$W/q.body")"
$S copy --dest-tls-verify=false "oci:$W/b:v1" "docker://$QR/other/three:v1" >/dev/null 2>&1 &&
  pass "quota: other namespaces are not limited" || fail "quota leaked to another namespace"
stop_pid "$PID_q"

# --- 20 clients push and re-push shared layers while GC loops -----------------
for i in 0 1 2 3; do make_layout "$W/s$i" v1 "shared-$i"; done
# check_tagged PREFIX: every tag of load/<PREFIX>1..20 pulls and verifies;
# sets TAGGED and BAD.
check_tagged() {
  BAD=0; TAGGED=0
  local k t
  for k in $(seq 20); do
    for t in $(curl -s "http://$R/v2/load/$1$k/tags/list" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("tags") or []))' 2>/dev/null); do
      TAGGED=$((TAGGED + 1))
      pulls "$R/load/$1$k:$t" || { BAD=$((BAD + 1)); echo "    broken: load/$1$k:$t"; }
    done
  done
}
# push_while_gc PREFIX MIN_AGE: 20 clients push 3 images twice each while
# GC runs back to back; prints the number of refused pushes.
push_while_gc() {
  rm -f "$W/stop-gc" "$W"/push-errors.* "$W/gc-loop.log"
  ( while [ ! -e "$W/stop-gc" ]; do gc "$R" "min_age=$2&delete_untagged=true&pace=false" >> "$W/gc-loop.log"; echo >> "$W/gc-loop.log"; done ) &
  local gcl=$! k pushers=()
  for k in $(seq 20); do
    ( for j in 1 2 3; do
        for again in 1 2; do
          $S copy --dest-tls-verify=false "oci:$W/s$(( (k + j) % 4 )):v1" "docker://$R/load/$1$k:v$j" >/dev/null 2>>"$W/push-errors.$k" ||
            echo "push failed $1$k:v$j" >> "$W/push-errors.$k"
        done
      done ) &
    pushers+=($!)
  done
  for k in "${pushers[@]}"; do wait "$k"; done
  touch "$W/stop-gc"; wait $gcl
  GC_RUNS=$(grep -c blobs_deleted "$W/gc-loop.log")
  REFUSED=$(cat "$W"/push-errors.* 2>/dev/null | grep -c "push failed")
}
# With a grace window (60 s here, 1 h by default) every push goes through.
push_while_gc g 60s
[ "$REFUSED" = 0 ] && pass "min_age 60s: 120 pushes during $GC_RUNS GC runs all succeed" ||
  { fail "$REFUSED pushes failed during GC with a grace window"; cat "$W"/push-errors.* | grep -v "^push failed" | tail -3; }
check_tagged g
[ $BAD = 0 ] && [ $TAGGED = 60 ] && pass "... and all 60 tagged images pull and verify" || fail "$BAD of $TAGGED tagged images broken"
# With min_age 0 a layer pushed before a run began and not yet named by a
# manifest is garbage to that run: such a push is refused cleanly
# (MANIFEST_BLOB_UNKNOWN), and no tagged image may break.
push_while_gc z 0s
check_tagged z
[ $BAD = 0 ] && [ $TAGGED -gt 0 ] && pass "min_age 0: $GC_RUNS GC runs during the pushes; all $TAGGED tagged images pull and verify ($REFUSED pushes refused)" ||
  fail "$BAD of $TAGGED tagged images broken after GC with min_age 0"
if [ "$REFUSED" -gt 0 ]; then
  grep -qh "manifest blob unknown" "$W"/push-errors.* && pass "... refused pushes got MANIFEST_BLOB_UNKNOWN" || fail "refusal: $(grep -hv '^push failed' "$W"/push-errors.* | tail -1)"
fi
gc "$R" "min_age=0s&delete_untagged=true" >/dev/null
out=$(gc "$R" "min_age=0s&delete_untagged=true&dry_run=true")
[ "$(echo "$out" | field blobs_deleted)" = 0 ] && [ "$(echo "$out" | field links_removed)" = 0 ] &&
  pass "after one more run nothing unreferenced is left" || fail "left after GC: $out"

# --- kill -9 during sweeps ------------------------------------------------------
# Unreferenced blobs to sweep (linked, but named by no manifest), then a
# sweep killed at a random moment, 20 times; the tagged image must pull
# after each restart, and the stopped store's GC finds no orphan left
# once a full run has passed.
stop_pid "$PID_r"
kills=0
for round in $(seq 20); do
  "$BIN_DIR/ocireg" serve --listen 127.0.0.1:0 --root "$STORE" --port-file "$W/kport" >/dev/null 2>>"$W/kill.log" &
  kp=$!
  for i in $(seq 200); do [ -s "$W/kport" ] && break; sleep 0.05; done
  KR=127.0.0.1:$(cat "$W/kport"); rm -f "$W/kport"
  for i in $(seq 100); do curl -s -o /dev/null "http://$KR/v2/" && break; sleep 0.05; done
  "$BIN_DIR/http-load" push-small "http://$KR" junk/r$round -c 4 -n 40 -s 100000 >/dev/null
  gc "$KR" "min_age=0s" >/dev/null &
  sleep "0.0$((RANDOM % 9))"
  kill -9 "$kp"; wait "$kp" 2>/dev/null; kills=$((kills + 1))
  wait
done
"$BIN_DIR/ocireg" serve --listen 127.0.0.1:0 --root "$STORE" --port-file "$W/kport" >/dev/null 2>>"$W/kill.log" &
kp=$!; PIDS+=($kp)
for i in $(seq 200); do [ -s "$W/kport" ] && break; sleep 0.05; done
KR=127.0.0.1:$(cat "$W/kport")
for i in $(seq 100); do curl -s -o /dev/null "http://$KR/v2/" && break; sleep 0.05; done
pulls "$KR/team/app:a" && pass "after $kills kill -9 during sweeps, team/app:a pulls and verifies" || fail "team/app:a broken after kills"
R=$KR check_tagged g
[ $BAD = 0 ] && [ $TAGGED = 60 ] && pass "... and so do the 60 load images" || fail "$BAD of $TAGGED load images broken after kills"
gc "$KR" "min_age=0s" > "$W/final.json"
stop_pid "$kp"
out=$("$BIN_DIR/ocireg" gc --root "$STORE" 2>&1)
echo "$out" | grep -q "0 blobs (0 bytes) reclaimed, 0 orphaned blobs" &&
  pass "ocireg gc --root on the stopped store: nothing left, no orphan bytes ($(cat "$W/final.json"))" || fail "stopped-store gc: $out"
"$BIN_DIR/ocireg" gc --root "$STORE" --dry-run --min-age 1x >/dev/null 2>"$W/err"; r=$?
[ $r -ne 0 ] && grep -q "min-age" "$W/err" && pass "a bad --min-age is one clear error" || fail "bad --min-age: $(cat "$W/err")"

finish

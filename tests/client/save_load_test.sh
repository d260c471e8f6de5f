#!/usr/bin/env bash
# ocibuild save/load: one tar that skopeo reads as docker-archive and as
# oci-archive; loading our own tar gives the same digest; archives written
# by skopeo (docker-archive and oci-archive) load and run; bad archives fail
# with one line.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
W=$(mktemp -d /tmp/ocib-saveload.XXXXXX)
trap 'rm -rf "$W"' EXIT
source "$(dirname "$0")/../script_lib.sh"
B="$BIN/ocibuild --root $W/a"
B2="$BIN/ocibuild --root $W/b"

mkdir -p "$W/img"
cp /bin/busybox "$W/img/"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN echo saved > /msg\nCMD ["cat", "/msg"]\n' > "$W/img/Dockerfile"
$B build -t team/app:1 "$W/img" >/dev/null 2>&1 || fail "build"
want=$($B inspect team/app:1 | jq -r .Digest)

if $B save -o "$W/app.tar" team/app:1 >"$W/out" 2>&1; then pass "save"; else fail "save"; cat "$W/out"; fi
layers=$($B inspect team/app:1 | jq '.Manifest.layers | length')
n=$(skopeo inspect "docker-archive:$W/app.tar" 2>"$W/err" | jq '.Layers | length')
[ "$n" = "$layers" ] && pass "skopeo reads it as docker-archive" || { fail "docker-archive ($n)"; cat "$W/err"; }
d=$(skopeo inspect "oci-archive:$W/app.tar:1" 2>"$W/err" | jq -r .Digest)
[ "$d" = "$want" ] && pass "skopeo reads it as oci-archive, same manifest digest" || { fail "oci-archive ($d)"; cat "$W/err"; }

if $B2 load -i "$W/app.tar" >"$W/out" 2>&1 && grep -q "Loaded image: team/app:1" "$W/out"; then pass "load our own tar"; else fail "load"; cat "$W/out"; fi
[ "$($B2 inspect team/app:1 | jq -r .Digest)" = "$want" ] && pass "loaded image has the saved digest" || fail "digest after load"
$B2 run team/app:1 >"$W/out" 2>&1 && grep -qx saved "$W/out" && pass "loaded image runs" || fail "run loaded"

skopeo copy "oci-archive:$W/app.tar:1" "docker-archive:$W/d.tar:docker.io/team/fromskopeo:2" >/dev/null 2>&1
if $B2 load -i "$W/d.tar" >"$W/out" 2>&1 && $B2 run team/fromskopeo:2 >"$W/out2" 2>&1 && grep -qx saved "$W/out2"; then
  pass "skopeo's docker-archive loads (docker.io/ prefix normalised) and runs"
else
  fail "skopeo docker-archive"; cat "$W/out" "$W/out2"
fi
skopeo copy "docker-archive:$W/app.tar" "oci-archive:$W/o.tar:team/oci:3" >/dev/null 2>&1
if $B2 load -i "$W/o.tar" >"$W/out" 2>&1 && $B2 run team/oci:3 >"$W/out2" 2>&1 && grep -qx saved "$W/out2"; then
  pass "skopeo's oci-archive loads and runs"
else
  fail "skopeo oci-archive"; cat "$W/out" "$W/out2"
fi
cat "$W/app.tar" | $B2 load -i - >/dev/null 2>&1 && pass "load from stdin" || fail "load from stdin"

echo "not a tar" > "$W/bad.tar"
if $B2 load -i "$W/bad.tar" >"$W/out" 2>&1; then fail "garbage loaded"; else
  [ "$(wc -l < "$W/out")" -eq 1 ] && grep -q "^ocibuild: " "$W/out" && pass "garbage archive: one-line error" || { fail "garbage message"; cat "$W/out"; }
fi
# A blob whose bytes do not match its name is refused and nothing is tagged.
mkdir -p "$W/t" && tar -C "$W/t" -xf "$W/app.tar"
first=$(ls "$W/t/blobs/sha256" | head -1)
echo tampered >> "$W/t/blobs/sha256/$first"
tar -C "$W/t" -cf "$W/tampered.tar" .
$BIN/ocibuild --root "$W/c" load -i "$W/tampered.tar" >"$W/out" 2>&1 && fail "tampered archive loaded" || {
  grep -q "does not hash to its name" "$W/out" && pass "tampered blob is refused" || { fail "tamper message"; cat "$W/out"; }
}
$BIN/ocibuild --root "$W/c" images | grep -q team/app && fail "tampered image was tagged" || pass "nothing tagged from a tampered archive"
$B save -o "$W/x.tar" no/such:1 >"$W/out" 2>&1 && fail "save of a missing image" || pass "save of a missing image fails"
[ -e "$W/x.tar" ] && fail "failed save left a file" || pass "failed save leaves no file"

finish

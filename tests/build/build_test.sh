#!/usr/bin/env bash
# ocibuild end to end: real builds with runc on overlayfs, no internet. The
# base is made from Debian's busybox-static. Checks RUN effects and
# whiteouts, ENV/WORKDIR/USER/ARG, multi-stage, .dockerignore, cache hits
# and misses, reproducibility, import/tag/rmi/history/inspect/run, and that
# bad Dockerfiles fail cleanly without tagging anything.
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
W=$(mktemp -d /tmp/ocib-build.XXXXXX)
trap 'rm -rf "$W"' EXIT
source "$(dirname "$0")/../script_lib.sh"
B="$BIN/ocibuild --root $W/root"
out() { cat "$W/out"; }

expect_ok() {  # expect_ok DESC CMD...: runs, output in $W/out
  local d="$1"; shift
  if "$@" >"$W/out" 2>&1; then pass "$d"; else fail "$d"; sed 's/^/    /' "$W/out" | tail -15; fi
}
expect_fail() {  # expect_fail DESC PATTERN CMD...: must fail with PATTERN in stderr/stdout
  local d="$1" pat="$2"; shift 2
  if "$@" >"$W/out" 2>&1; then fail "$d (succeeded)"; return; fi
  if grep -q -- "$pat" "$W/out"; then pass "$d"; else fail "$d: no '$pat' in:"; sed 's/^/    /' "$W/out" | tail -5; fi
}
has() { grep -q -- "$1" "$W/out"; }

# --- a busybox base image ---
mkdir -p "$W/base"
cp /bin/busybox "$W/base/busybox"
cat > "$W/base/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && \
    echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && \
    printf 'root:x:0:\napp:x:1000:\n' > /etc/group && chmod 1777 /tmp
CMD ["sh"]
DF
expect_ok "build a busybox base from scratch" $B build -t base:1 "$W/base"
expect_ok "run the base" $B run base:1 echo from-busybox
has from-busybox && pass "RUN output reaches the user" || fail "no output from run"

# --- RUN effects, whiteouts, ENV/WORKDIR/USER/ARG ---
mkdir -p "$W/app"
echo "v1" > "$W/app/data.txt"
echo "secret" > "$W/app/secret.key"
mkdir -p "$W/app/ignored"; echo x > "$W/app/ignored/file"
printf '*.key\nignored\n' > "$W/app/.dockerignore"
cat > "$W/app/Dockerfile" <<'DF'
# escape=\
ARG BASE=base:1
FROM ${BASE} AS builder
ARG FLAVOR=plain
ENV APP_HOME=/srv/app \
    GREETING="hello world"
WORKDIR $APP_HOME
RUN mkdir -p old && echo keep > old/keep && echo gone > old/gone && echo "flavor=$FLAVOR" > flavor
RUN rm old/gone && echo changed > old/keep
COPY data.txt ./
COPY --chown=app:app --chmod=0640 data.txt owned.txt
RUN ls -ln owned.txt | awk '{print $1, $3, $4}' && echo "$GREETING in $(pwd)" && cat flavor
USER app
RUN id -u > /tmp/whoami && cat /tmp/whoami

FROM base:1
COPY --from=builder /srv/app/data.txt /out/data.txt
COPY --from=builder /tmp/whoami /out/whoami
LABEL org.example.stage=final
EXPOSE 8080
ENTRYPOINT ["cat"]
CMD ["/out/data.txt"]
DF
expect_ok "multi-stage build with ARG, ENV, WORKDIR, USER, COPY --chown/--chmod/--from" \
  $B build --build-arg FLAVOR=fancy -t app:1 "$W/app"
has "hello world in /srv/app" && pass "ENV and WORKDIR seen by RUN" || fail "ENV/WORKDIR not seen"
has "flavor=fancy" && pass "build arg reaches RUN" || fail "build arg not seen"
has -- "-rw-r----- 1000 1000" && pass "COPY --chown and --chmod applied" || fail "chown/chmod not applied"
grep -qx "1000" "$W/out" && pass "USER applies to RUN" || fail "USER not applied"
expect_ok "run the final image (ENTRYPOINT + CMD)" $B run app:1
grep -qx v1 "$W/out" && pass "final image holds the copied file" || fail "final image content"
expect_ok "run with a command overriding CMD" $B run app:1 /out/whoami
grep -qx 1000 "$W/out" && pass "COPY --from another stage" || fail "COPY --from"
expect_ok "inspect" $B inspect app:1
cfg="$W/out"
jq -e '.Config.config.ExposedPorts["8080/tcp"]' "$cfg" >/dev/null && pass "EXPOSE recorded" || fail "EXPOSE"
jq -e '.Config.config.Labels["org.example.stage"] == "final"' "$cfg" >/dev/null && pass "LABEL recorded" || fail "LABEL"
jq -e '.Manifest.mediaType == "application/vnd.oci.image.manifest.v1+json"' "$cfg" >/dev/null && pass "OCI manifest" || fail "manifest type"

mkdir -p "$W/ep"; printf 'FROM base:1\nENTRYPOINT ["echo", "ep"]\n' > "$W/ep/Dockerfile"
expect_ok "ENTRYPOINT image" $B build -t ep:1 "$W/ep"
expect_ok "run it" $B run ep:1
grep -qx ep "$W/out" && pass "ENTRYPOINT resets the CMD inherited from the base" || fail "inherited CMD kept: $(cat "$W/out")"

# Whiteouts in the builder stage's layers.
expect_ok "build the builder stage only (--target)" $B build --target builder -t app:builder "$W/app"
$B inspect app:builder > "$W/insp"
layers=$(jq -r '.Manifest.layers[].digest' "$W/insp")
found_wh=no
$B save -o "$W/builder.tar" app:builder >/dev/null 2>&1  # the layers, through the store's API
for l in $layers; do
  h=${l#sha256:}
  # grep without -q reads to the end: with pipefail, an early exit would
  # fail the pipeline through tar's SIGPIPE.
  if tar -xOf "$W/builder.tar" "blobs/sha256/$h" 2>/dev/null | tar -tz 2>/dev/null | grep 'srv/app/old/.wh.gone' >/dev/null; then found_wh=yes; fi
done
[ $found_wh = yes ] && pass "deleted file becomes a .wh. whiteout in its layer" || fail "no whiteout for old/gone"
expect_ok "whiteout hides the file at run time" $B run app:builder sh -c 'ls /srv/app/old; cat /srv/app/old/keep'
! has gone && has changed && pass "deleted file is gone, changed file changed" || fail "layer stacking"

# .dockerignore
printf 'FROM base:1\nCOPY secret.key /x\n' > "$W/app/Dockerfile.ign"
expect_fail "COPY of an ignored file fails" "excluded by .dockerignore" \
  $B build -t bad:1 -f "$W/app/Dockerfile.ign" "$W/app"
printf 'FROM base:1\nCOPY . /ctx/\nRUN ls -a /ctx\n' > "$W/app/Dockerfile.all"
expect_ok "COPY . honours .dockerignore" $B build -f "$W/app/Dockerfile.all" -t ctx:1 "$W/app"
! has secret.key && ! has ignored && has data.txt && pass ".dockerignore excluded *.key and ignored/" || fail ".dockerignore"

# --- cache ---
expect_ok "rebuild with nothing changed" $B build --build-arg FLAVOR=fancy -t app:2 "$W/app"
! grep -q "hello world in" "$W/out" && pass "fully cached rebuild runs no command" || fail "cached rebuild ran commands"
d1=$($B inspect app:1 | jq -r .Digest); d2=$($B inspect app:2 | jq -r .Digest)
[ "$d1" = "$d2" ] && pass "cached rebuild gives the same digest" || fail "digest changed on cached rebuild"
echo "v2" > "$W/app/data.txt"
expect_ok "rebuild after changing data.txt" $B build --build-arg FLAVOR=fancy -t app:3 "$W/app"
n_cached=$(grep -c "Using cache" "$W/out")
has "hello world in" && [ "$n_cached" -ge 2 ] && pass "re-runs from the first step that reads the changed file ($n_cached cached steps)" \
  || fail "cache miss behaviour ($n_cached cached)"
expect_ok "run the rebuilt image" $B run app:3
grep -qx v2 "$W/out" && pass "rebuilt image has the new content" || fail "rebuilt content"
expect_ok "--no-cache" $B build --no-cache --build-arg FLAVOR=fancy -t app:4 "$W/app"
! has "Using cache" && pass "--no-cache ignores the cache" || fail "--no-cache used the cache"

# --- reproducibility: a fresh store gives the same digest ---
B2="$BIN/ocibuild --root $W/root2"
expect_ok "fresh store: base" $B2 build -t base:1 "$W/base"
expect_ok "fresh store: app" $B2 build --build-arg FLAVOR=fancy -t app:3 "$W/app"
r1=$($B inspect app:3 | jq -r .Digest); r2=$($B2 inspect app:3 | jq -r .Digest)
[ "$r1" = "$r2" ] && pass "two fresh builds give the same image digest ($r1)" || fail "not reproducible: $r1 vs $r2"
SOURCE_DATE_EPOCH=1700000000 $B2 build --no-cache -t app:sde --build-arg FLAVOR=fancy "$W/app" >/dev/null 2>&1
c=$($B2 inspect app:sde | jq -r .Config.created)
[ "$c" = "2023-11-14T22:13:20Z" ] && pass "SOURCE_DATE_EPOCH sets created" || fail "created is $c"

# --- zstd and docker format ---
expect_ok "zstd layers" $B build --compression zstd -t app:zstd --build-arg FLAVOR=fancy "$W/app"
$B inspect app:zstd | jq -e '.Manifest.layers[-1].mediaType == "application/vnd.oci.image.layer.v1.tar+zstd"' >/dev/null \
  && pass "zstd media type" || fail "zstd media type"
expect_ok "run a zstd image" $B run app:zstd
expect_ok "--format docker" $B build --format docker -t app:docker --build-arg FLAVOR=fancy "$W/app"
$B inspect app:docker | jq -e '.MediaType == "application/vnd.docker.distribution.manifest.v2+json"' >/dev/null \
  && pass "Docker schema 2 manifest" || fail "docker format"

# --- images, history, tag, rmi, import ---
expect_ok "images" $B images
has "^app  *1 " && has "^base  *1 " && pass "images lists repository and tag" || fail "images listing"
expect_ok "history" $B history app:builder
has "RUN |1 FLAVOR=plain /bin/sh -c rm old/gone" && has "WORKDIR /srv/app  " && grep "ENV APP_HOME" "$W/out" | grep -q " 0B " && pass "history rows as BuildKit words them, with sizes and 0B for empty layers" || fail "history"
expect_ok "tag" $B tag app:1 team/app:latest
expect_ok "run via the new tag" $B run team/app
expect_ok "rmi" $B rmi team/app:latest
expect_fail "removed tag is gone" "no local image" $B run team/app:latest
mkdir -p "$W/rootfs/bin"; cp /bin/busybox "$W/rootfs/bin/"; ln -s busybox "$W/rootfs/bin/sh"
tar -C "$W/rootfs" -czf "$W/rootfs.tgz" .
expect_ok "import a rootfs tarball" $B import "$W/rootfs.tgz" imported:1
expect_ok "run the imported image" $B run imported:1 /bin/sh -c 'echo imported-ok'
has imported-ok && pass "imported image runs" || fail "imported run"
if $B import - imported:stdin < "$W/rootfs.tgz" >"$W/out" 2>&1 && $B run imported:stdin /bin/sh -c 'echo via-stdin' >"$W/out" 2>&1 && has via-stdin; then
  pass "import from stdin"
else
  fail "import from stdin"; cat "$W/out"
fi
echo "not a tar" > "$W/notatar"
expect_fail "import of a non-tar fails" "not a tar" $B import "$W/notatar" bad:1

# --- ADD: local tar archives are extracted; URLs are fetched, or fail clearly ---
mkdir -p "$W/add/payload/sub"; echo inside > "$W/add/payload/sub/file"
tar -C "$W/add/payload" -czf "$W/add/archive.tgz" .
echo "plain" > "$W/add/plain.txt"
"$BIN/ocireg" serve --listen 127.0.0.1:0 --root "$W/reg" --port-file "$W/reg.port" >/dev/null 2>&1 &
REGPID=$!
for i in $(seq 100); do [ -s "$W/reg.port" ] && break; sleep 0.05; done
RP=$(cat "$W/reg.port")
for i in $(seq 100); do curl -sf "http://127.0.0.1:$RP/v2/" >/dev/null && break; sleep 0.05; done
DG=sha256:$(sha256sum "$W/add/plain.txt" | cut -d' ' -f1)
curl -s -o /dev/null -X POST --data-binary @"$W/add/plain.txt" "http://127.0.0.1:$RP/v2/files/blobs/uploads/?digest=$DG"
cat > "$W/add/Dockerfile" <<DF
FROM base:1
ADD archive.tgz /unpacked/
ADD http://127.0.0.1:$RP/v2/files/blobs/$DG /fetched/plain.txt
RUN cat /unpacked/sub/file /fetched/plain.txt
DF
expect_ok "ADD extracts a local tar and fetches a URL" $B build -t add:1 "$W/add"
has inside && has plain && pass "ADD results visible to RUN" || fail "ADD results"
# --- independent stages build at once (as BuildKit): each stage notes
# the host's uptime (one clock for every container) before and after a
# 3 s step; run one after the other, the two spans could not overlap ---
mkdir -p "$W/par"
cat > "$W/par/Dockerfile" <<'DF'
FROM base:1 AS listener
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 3 && cut -d' ' -f1 /proc/uptime > /end

FROM base:1 AS sender
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 3 && cut -d' ' -f1 /proc/uptime > /end

FROM base:1
COPY --from=listener /start /a.start
COPY --from=listener /end /a.end
COPY --from=sender /start /b.start
COPY --from=sender /end /b.end
DF
expect_ok "two independent stages" $B build --no-cache -t par:1 "$W/par"
cp "$W/out" "$W/par.out"
spans=$($B run --rm par:1 cat /a.start /a.end /b.start /b.end 2>&1 | tr '\n' ' ')
cp "$W/par.out" "$W/out"
echo "$spans" | awk '{exit !($1 < $4 && $3 < $2)}' && pass "independent stages ran at the same time (spans $spans)" ||
  fail "stages not parallel: spans $spans"
has "\[listener\] Step 2/9" && has "\[sender\] Step 4/9" && pass "their output lines name the stage" || fail "no stage prefixes"
cat > "$W/par/Dockerfile.fail" <<'DF'
FROM base:1 AS broken
RUN exit 7
FROM base:1 AS fine
RUN true
FROM base:1
COPY --from=fine /etc/passwd /p
COPY --from=broken /etc/passwd /q
DF
expect_fail "a failing stage fails the build with its own error" "Dockerfile.fail:2: RUN" $B build -f "$W/par/Dockerfile.fail" -t par:2 "$W/par"
# Cache mount sharing between stages that run at once: `locked` lets one
# at a time in (neither sees the other's marker), `private` gives the
# second its own empty directory while the first holds the cache.
cat > "$W/par/Dockerfile.locked" <<'DF'
FROM base:1 AS one
RUN --mount=type=cache,id=shared-lock,target=/c,sharing=locked sh -c '[ -e /c/busy ] && echo overlap > /seen; touch /c/busy; sleep 1; rm /c/busy; touch /seen'
FROM base:1 AS two
RUN --mount=type=cache,id=shared-lock,target=/c,sharing=locked sh -c '[ -e /c/busy ] && echo overlap > /seen; touch /c/busy; sleep 1; rm /c/busy; touch /seen'
FROM base:1
COPY --from=one /seen /one
COPY --from=two /seen /two
DF
expect_ok "two stages share a sharing=locked cache mount" $B build --no-cache -f "$W/par/Dockerfile.locked" -t par:locked "$W/par"
[ "$($B run --rm par:locked cat /one /two 2>&1)" = "" ] && pass "sharing=locked: one stage at a time in the cache" || fail "locked cache overlapped: $($B run --rm par:locked cat /one /two 2>&1)"
sed 's/sharing=locked/sharing=private/; s/shared-lock/shared-private/' "$W/par/Dockerfile.locked" | sed 's#touch /c/busy; sleep 1#touch /c/busy; ls /c > /listing; sleep 1#' > "$W/par/Dockerfile.private"
expect_ok "two stages with a sharing=private cache mount" $B build --no-cache -f "$W/par/Dockerfile.private" -t par:private "$W/par"
# --- COPY --exclude, --parents, --link (Dockerfile 1.7 syntax, newer than
# the BuildKit 0.8 tests/parity compares with) and FROM --platform ---
mkdir -p "$W/cx/src/a/b" "$W/cx/src/logs"
echo keep > "$W/cx/src/a/b/keep.txt"; echo drop > "$W/cx/src/a/b/drop.log"; echo l > "$W/cx/src/logs/x.log"
echo top > "$W/cx/src/top.txt"
cat > "$W/cx/Dockerfile" <<'DF'
FROM base:1
COPY --exclude=*.log --exclude=logs src/ /ex/
COPY --exclude=**/*.log src/a /ex2/
COPY --parents src/a/b/keep.txt src/top.txt /par/
RUN mkdir -m 0700 /private
COPY --link src/top.txt /private/linked.txt
COPY src/top.txt /private/plain.txt
DF
expect_ok "COPY --exclude, --parents, --link" $B build -t cx:1 "$W/cx"
$B run --rm cx:1 sh -c 'find /ex /ex2 /par -type f | sort; stat -c "%a %n" /private' > "$W/cx.out" 2>&1
# *.log matches at the top only (.dockerignore patterns); **/*.log anywhere.
# /private ends 0755: the --link layer carries a new /private, as docker's
# --link layers do.
[ "$(tr '\n' ' ' < "$W/cx.out")" = "/ex/a/b/drop.log /ex/a/b/keep.txt /ex/top.txt /ex2/b/keep.txt /par/src/a/b/keep.txt /par/src/top.txt 755 /private " ] &&
  pass "--exclude leaves the patterns out; --parents keeps source paths" || fail "exclude/parents: $(tr '\n' ' ' < "$W/cx.out")"
$B save -o "$W/cx.tar" cx:1 >/dev/null 2>&1 && mkdir -p "$W/cx.x" && tar -C "$W/cx.x" -xf "$W/cx.tar"
layers=$(jq -r '.[0].Layers[]' "$W/cx.x/manifest.json")
link_layer=$(echo "$layers" | tail -2 | head -1); mkdir_layer=$(echo "$layers" | tail -3 | head -1)
tar -tvzf "$W/cx.x/$link_layer" > "$W/link.list" 2>/dev/null; tar -tvzf "$W/cx.x/$mkdir_layer" > "$W/mkdir.list" 2>/dev/null
grep -q "^drwxr-xr-x .* private/$" "$W/link.list" && grep -q "^drwx------ .* private/$" "$W/mkdir.list" &&
  pass "--link makes its layer without the image below (a new 0755 parent over the 0700 one)" ||
  fail "--link layer: $(tar -tvzf "$W/cx.x/$link_layer" 2>&1 | head -3)"
printf 'FROM base:1\nADD --keep-git-dir=true https://example.invalid/r.git /src\n' > "$W/cx/Dockerfile.git"
expect_fail "ADD --keep-git-dir: git sources are refused clearly" "git repositories" $B build -f "$W/cx/Dockerfile.git" "$W/cx"
printf 'FROM --platform=linux/arm64 scratch\nRUN true\n' > "$W/cx/Dockerfile.arm"
expect_fail "FROM --platform of another arch: RUN fails clearly" "cannot RUN for linux/arm64" $B build -f "$W/cx/Dockerfile.arm" "$W/cx"
printf 'FROM --platform=arm64 scratch\n' > "$W/cx/Dockerfile.badplat"
expect_fail "FROM --platform that is not os/arch" "must be os/arch" $B build -f "$W/cx/Dockerfile.badplat" "$W/cx"
# --- build flags as docker build has them ---
mkdir -p "$W/flags/other"
echo from-named-context > "$W/flags/other/named.txt"
cat > "$W/flags/Dockerfile" <<'DF'
FROM base:1 AS deps
RUN echo dep > /dep.txt
FROM base:1
COPY --from=deps /dep.txt /dep.txt
COPY --from=extra /named.txt /named.txt
RUN --mount=from=extra,target=/ctx cat /ctx/named.txt > /mounted.txt
RUN ls /sys/class/net > /ifaces.txt
DF
expect_ok "build with --label, --iidfile, --build-context, --network none, --output, --push" \
  $B build -t "127.0.0.1:$RP/team/flags:1" --label org.example.v=7 --iidfile "$W/iid" \
    --build-context extra="$W/flags/other" --network none \
    --output type=local,dest="$W/out-local" -o type=tar,dest="$W/out.tar" --output type=oci,dest="$W/out-oci.tar" \
    --push "$W/flags"
id=$($B inspect "127.0.0.1:$RP/team/flags:1" | jq -r .Id)
[ "$(cat "$W/iid")" = "$id" ] && pass "--iidfile holds the image ID (the config digest)" || fail "iidfile $(cat "$W/iid") vs $id"
has "Successfully built ${id:7:12}" && $B images | grep -q "${id:7:12}" && pass "build ends with the ID that images shows" || fail "build end: $(grep Successfully "$W/out")"
$B inspect "127.0.0.1:$RP/team/flags:1" | jq -e '.Config.config.Labels["org.example.v"] == "7"' >/dev/null && pass "--label lands in the config" || fail "--label"
[ "$(cat "$W/out-local/named.txt" "$W/out-local/mounted.txt" "$W/out-local/ifaces.txt" 2>&1 | tr '\n' ' ')" = "from-named-context from-named-context lo " ] &&
  pass "--build-context (COPY --from, RUN --mount from=), --network none, --output type=local" || fail "local output: $(ls "$W/out-local" 2>&1 | tr '\n' ' ')"
tar -tf "$W/out.tar" > "$W/out.list" 2>/dev/null; grep -qx "./dep.txt\|dep.txt" "$W/out.list" && pass "--output type=tar: the root filesystem as one tar" || fail "tar output"
tar -tf "$W/out-oci.tar" > "$W/oci.list" 2>/dev/null; grep -qx "index.json" "$W/oci.list" && pass "--output type=oci: an OCI layout tar" || fail "oci output"
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$RP/v2/team/flags/manifests/1" >/dev/null &&
  pass "--push uploads the tag" || fail "--push: manifest not in the registry"
expect_ok "-q prints only the image ID" $B build -q -t flags:q --build-context extra="$W/flags/other" "$W/flags"
[ "$(cat "$W/out")" = "$($B inspect flags:q | jq -r .Id)" ] && pass "-q output is the ID" || fail "-q printed: $(head -3 "$W/out")"
expect_ok "--no-cache-filter deps" $B build --no-cache-filter deps -t flags:nc --build-context extra="$W/flags/other" "$W/flags"
[ "$(grep -c 'Using cache' "$W/out")" = 4 ] && ! grep -A1 'RUN echo dep' "$W/out" | grep -q 'Using cache' && pass "--no-cache-filter reruns that stage's steps, the rest hits the cache" || fail "cache hits: $(grep -c 'Using cache' "$W/out")"
expect_fail "--output with an unknown type" "type must be local, tar, oci or docker" $B build --output type=registry,dest=x "$W/flags"
expect_fail "--build-context that is not a directory" "is not a directory" $B build --build-context extra="$W/nope" "$W/flags"
expect_fail "a named context that was not given" "no such stage, build context or local image" $B build -t x:1 "$W/flags"
# Dates: the commit time of a git checkout, else no date (not "56 years ago").
mkdir -p "$W/dated"; printf 'FROM base:1\nRUN true\n' > "$W/dated/Dockerfile"
git -C "$W/dated" init -q && git -C "$W/dated" add . &&
  GIT_COMMITTER_DATE="2024-05-06T07:08:09Z" GIT_AUTHOR_DATE="2024-05-06T07:08:09Z" \
  git -C "$W/dated" -c user.name=t -c user.email=t@t commit -qm one
(unset SOURCE_DATE_EPOCH; $B build -t dated:1 "$W/dated" >/dev/null 2>&1)
[ "$($B inspect dated:1 | jq -r .Config.created)" = "2024-05-06T07:08:09Z" ] && pass "a git checkout's commit time is the default SOURCE_DATE_EPOCH" ||
  fail "created: $($B inspect dated:1 | jq -r .Config.created)"
$B images | grep -E "^dated " | grep -q "years ago" && ! $B images | grep -E "^add " | grep -q "years ago" &&
  pass "images shows an age only for a real date" || fail "images dates: $($B images | grep -E '^(dated|add) ')"
printf 'FROM base:1\nADD --checksum=%s http://127.0.0.1:%s/v2/files/blobs/%s /sum.txt\n' "$DG" "$RP" "$DG" > "$W/add/Dockerfile.sum"
expect_ok "ADD --checksum with the right digest" $B build -f "$W/add/Dockerfile.sum" -t add:sum "$W/add"
expect_ok "ADD --checksum: the rebuild comes from the cache" $B build -f "$W/add/Dockerfile.sum" -t add:sum "$W/add"
has "Using cache" && pass "a checksummed URL is cached" || fail "no cache hit for ADD --checksum"
printf 'FROM base:1\nADD --checksum=sha256:%064d http://127.0.0.1:%s/v2/files/blobs/%s /sum.txt\n' 0 "$RP" "$DG" > "$W/add/Dockerfile.badsum"
expect_fail "ADD --checksum mismatch" "checksum mismatch" $B build -f "$W/add/Dockerfile.badsum" -t add:bad "$W/add"
printf 'FROM base:1\nADD http://127.0.0.1:%s/v2/files/blobs/sha256:%064d /x\n' "$RP" 0 > "$W/add/Dockerfile.404"
expect_fail "ADD of a URL that answers 404" "HTTP 404" $B build -f "$W/add/Dockerfile.404" -t add:404 "$W/add"
kill $REGPID; wait $REGPID 2>/dev/null
printf 'FROM base:1\nADD http://127.0.0.1:%s/nothing /x\n' "$RP" > "$W/add/Dockerfile.down"
expect_fail "ADD from an unreachable URL fails clearly" "cannot fetch" $B build -f "$W/add/Dockerfile.down" -t add:2 "$W/add"

# --- as BuildKit builds them (issue 11: default PATH, COPY into an
# existing directory, EXPOSE ranges) ---
mkdir -p "$W/parity"
echo 'int main(void) { return 0; }' > "$W/parity/hello.c"
cat > "$W/parity/Dockerfile" <<'DF'
FROM scratch AS empty
COPY hello.c /hello.c

FROM base:1
ENV PATH=/opt/bin:$PATH
RUN echo "path=$PATH"
WORKDIR /src
COPY hello.c .
RUN mkdir -p /data
COPY hello.c /data
RUN ls -l /src/hello.c /data/hello.c
EXPOSE 8000-8002 53/udp 9000/TCP
DF
expect_ok "build with ENV PATH=...:\$PATH, COPY into WORKDIR and an existing dir, EXPOSE ranges" \
  $B build -t parity:1 "$W/parity"
has "path=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" &&
  pass "a base without PATH gets the default one: ENV PATH=/opt/bin:\$PATH extends it" || fail "PATH: $(grep path= "$W/out")"
has "/src/hello.c" && has "/data/hello.c" &&
  pass "COPY f . after WORKDIR, and COPY f /existing-dir, copy into the directory" || fail "COPY into a directory"
$B inspect parity:1 > "$W/insp"
jq -e '.Config.config.ExposedPorts | keys == ["53/udp", "8000/tcp", "8001/tcp", "8002/tcp", "9000/tcp"]' "$W/insp" >/dev/null &&
  pass "EXPOSE 8000-8002 gives three ports; protocols kept and lower-cased" ||
  fail "EXPOSE: $(jq -c '.Config.config.ExposedPorts' "$W/insp")"
# Only the stages the result uses are built (BuildKit), with or without --target.
mkdir -p "$W/prune"
cat > "$W/prune/Dockerfile" <<'DF'
FROM base:1 AS broken
RUN echo building-broken && exit 7
FROM base:1 AS dep
RUN echo dep > /dep
FROM broken AS also-broken
RUN echo building-also-broken
FROM base:1 AS final
COPY --from=dep /dep /dep
RUN cat /dep
DF
expect_ok "a failing stage the result does not use is skipped" $B build -t prune:1 "$W/prune"
! has building-broken && ! has building-also-broken && has "stage skipped" &&
  pass "unused stages are not run" || fail "unused stages ran"
expect_ok "--target builds the target's stages only" $B build --target dep -t prune:dep "$W/prune"
! has building-broken && pass "--target dep skips the failing stage" || fail "--target ran an unused stage"
expect_fail "--target on a stage built FROM the failing one runs it" "Dockerfile:2: RUN" \
  $B build --target also-broken -t prune:bad "$W/prune"
# ONBUILD: a child runs its base's triggers right after FROM, in its own
# context, and records none.
mkdir -p "$W/onbuild-parent" "$W/onbuild-child"
printf 'FROM base:1\nONBUILD RUN echo triggered > /onbuild\nONBUILD COPY data.txt /from-child.txt\n' \
  > "$W/onbuild-parent/Dockerfile"
expect_ok "a parent image with ONBUILD triggers" $B build -t onbuild:parent "$W/onbuild-parent"
$B inspect onbuild:parent > "$W/insp"
jq -e '.Config.config.OnBuild | length == 2' "$W/insp" >/dev/null && pass "the parent records its triggers" || fail "parent OnBuild"
echo child-data > "$W/onbuild-child/data.txt"
printf 'FROM onbuild:parent\nRUN cat /onbuild /from-child.txt\n' > "$W/onbuild-child/Dockerfile"
expect_ok "a child of it" $B build -t onbuild:child "$W/onbuild-child"
has triggered && has child-data && pass "the triggers ran right after FROM, COPY from the child's context" ||
  fail "ONBUILD triggers did not run"
$B inspect onbuild:child > "$W/insp"
jq -e '(.Config.config.OnBuild // []) | length == 0' "$W/insp" >/dev/null && pass "the child records no triggers" ||
  fail "child OnBuild: $(jq -c '.Config.config.OnBuild' "$W/insp")"
# COPY from the context: owned by root whoever owns it on the host, and
# setuid/setgid bits kept (chown would clear them).
mkdir -p "$W/modes"
echo x > "$W/modes/suid"; chmod 4755 "$W/modes/suid"
echo y > "$W/modes/sgid"; chmod 2750 "$W/modes/sgid"
echo z > "$W/modes/theirs"; chown 1234:5678 "$W/modes/theirs"
printf 'FROM base:1\nCOPY suid sgid theirs /m/\nRUN stat -c "%%n %%a %%u:%%g" /m/suid /m/sgid /m/theirs\n' > "$W/modes/Dockerfile"
expect_ok "COPY keeps special mode bits and gives files to root" $B build -t modes:1 "$W/modes"
has "/m/suid 4755 0:0" && has "/m/sgid 2750 0:0" && pass "setuid and setgid bits survive COPY" ||
  fail "mode bits: $(grep /m/ "$W/out")"
has "/m/theirs 644 0:0" && pass "context files are owned by root in the image" || fail "owner: $(grep /m/theirs "$W/out")"
# ADD: a compressed file that is not a tar is copied as it is; a tar.gz is
# extracted. ARG values of a parent stage carry into FROM <stage> (BuildKit).
mkdir -p "$W/addgz/t"
echo plain-gzip | gzip > "$W/addgz/note.gz"
echo in-tar > "$W/addgz/t/inner"; tar -C "$W/addgz/t" -czf "$W/addgz/arch.tar.gz" inner
cat > "$W/addgz/Dockerfile" <<'DF'
FROM base:1 AS parent
ARG VERSION=1.2
ADD note.gz /n/
ADD arch.tar.gz /x/
FROM parent
RUN zcat /n/note.gz && cat /x/inner && echo "version=$VERSION"
DF
expect_ok "ADD of a .gz that is not a tar, and of a tar.gz" $B build -t addgz:1 "$W/addgz"
has plain-gzip && pass "a gzip file that is not a tar is copied as it is" || fail "ADD note.gz"
has in-tar && pass "a tar.gz is extracted" || fail "ADD arch.tar.gz"
has "version=1.2" && pass "ARG values carry into FROM <stage>, as BuildKit" || fail "ARG across FROM stage: $(grep version= "$W/out")"
# A pattern that matches nothing is fine beside sources that do match.
mkdir -p "$W/globs"; echo g > "$W/globs/a.txt"
printf 'FROM base:1\nCOPY a.txt *.none /g/\nRUN cat /g/a.txt\n' > "$W/globs/Dockerfile"
expect_ok "COPY with a pattern matching nothing beside a file that exists" $B build -t globs:1 "$W/globs"
printf 'FROM base:1\nCOPY *.none /g/\n' > "$W/globs/Dockerfile"
expect_fail "COPY whose only pattern matches nothing fails" "no source files match" $B build -t globs:2 "$W/globs"
# A WORKDIR made for a step after USER belongs to that user (BuildKit).
mkdir -p "$W/wd"
printf 'FROM base:1\nUSER app\nWORKDIR /home/app/work\nRUN stat -c "wd %%u:%%g" . /home/app\n' > "$W/wd/Dockerfile"
expect_ok "WORKDIR after USER" $B build -t wd:1 "$W/wd"
[ "$(grep -c '^wd 1000:1000$' "$W/out")" = 2 ] && pass "the WORKDIR it creates belongs to the USER" ||
  fail "WORKDIR owner: $(grep '^wd ' "$W/out" | tr '\n' ' ')"
expect_ok "build the scratch stage" $B build --target empty -t parity:empty "$W/parity"
$B inspect parity:empty > "$W/insp"
jq -e '.Config.config.Env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]' "$W/insp" >/dev/null &&
  pass "FROM scratch records the default PATH, as BuildKit" || fail "scratch Env: $(jq -c '.Config.config.Env' "$W/insp")"

# --- bad Dockerfiles: clean errors, nothing tagged ---
bad() {  # bad NAME PATTERN DOCKERFILE-TEXT
  mkdir -p "$W/bad/$1"; printf '%b' "$3" > "$W/bad/$1/Dockerfile"; echo x > "$W/bad/$1/file"
  ln -sf /etc/passwd "$W/bad/$1/escape" 2>/dev/null
  expect_fail "bad Dockerfile: $1" "$2" $B build -t bad/$1:1 "$W/bad/$1"
  $B inspect bad/$1:1 >/dev/null 2>&1 && fail "bad Dockerfile $1 left an image" || true
}
bad unknown "Dockerfile:2: unknown instruction: FROBNICATE" 'FROM base:1\nFROBNICATE x\n'
bad nofrom "no FROM" 'RUN echo hi\n'
bad json "Dockerfile:2: CMD: malformed JSON" 'FROM base:1\nCMD ["sh", oops]\n'
bad outside "outside the build context" 'FROM base:1\nCOPY ../x /x\n'
bad symlink "resolves outside the build context" 'FROM base:1\nCOPY escape /x\n'
bad missing "not found in the build context" 'FROM base:1\nCOPY nothere /x\n'
bad failing "Dockerfile:2: RUN: command" 'FROM base:1\nRUN exit 3\n'
bad nobase "names no registry" 'FROM nosuch/image:1\n'
bad user "unknown user" 'FROM base:1\nUSER nobody-here\nRUN true\n'
bad exposebad "invalid port" 'FROM base:1\nEXPOSE 90-80\n'
# --- RUN --mount, --network, --secret, heredocs (compared with BuildKit in
# tests/parity; here what a parity case cannot show) ---
mkdir -p "$W/mnt/src"
echo ctx-data > "$W/mnt/src/a.txt"
echo "s3cr3t-$RANDOM-value" > "$W/secret.txt"
cat > "$W/mnt/Dockerfile" <<'DF'
FROM base:1
RUN --network=none ls /sys/class/net > /ifaces.txt
RUN --mount=type=bind,source=src,target=/m (echo x > /m/new 2>/dev/null && echo writable || echo read-only) > /ro.txt
RUN --mount=type=bind,source=src,target=/m,rw echo changed > /m/a.txt && cat /m/a.txt > /rw.txt
RUN --mount=type=cache,target=/cache,id=counter echo run >> /cache/log && wc -l < /cache/log > /count.txt
RUN --mount=type=secret,id=tok,required cp /run/secrets/tok /tmp/copied && wc -c < /tmp/copied > /secret-len.txt && rm /tmp/copied
DF
expect_ok "RUN --mount (bind, cache, secret) and --network=none" $B build --secret id=tok,src="$W/secret.txt" -t mnt:1 "$W/mnt"
$B run --rm mnt:1 cat /ifaces.txt /ro.txt /rw.txt /count.txt > "$W/mnt.out" 2>&1
[ "$(tr '\n' ' ' < "$W/mnt.out")" = "lo read-only changed 1 " ] &&
  pass "--network=none has only lo; bind mounts read-only unless rw; first cache use" || fail "mount results: $(cat "$W/mnt.out")"
[ "$(cat "$W/mnt/src/a.txt")" = ctx-data ] && [ ! -e "$W/mnt/src/new" ] && pass "rw bind mount writes never reach the context" || fail "context changed"
$B save -o "$W/mnt.tar" mnt:1 >/dev/null 2>&1
mkdir -p "$W/mnt.x" && tar -C "$W/mnt.x" -xf "$W/mnt.tar" && for l in "$W"/mnt.x/blobs/sha256/*; do zcat -f "$l"; done > "$W/mnt.all" 2>/dev/null
! grep -q "$(cat "$W/secret.txt")" "$W/mnt.all" && ! $B history --no-trunc mnt:1 | grep -q s3cr3t &&
  pass "the secret is in no layer, config or history" || fail "secret leaked into the image"
for l in "$W"/mnt.x/blobs/sha256/*; do zcat -f "$l" | tar -t 2>/dev/null; done > "$W/mnt.list"
grep -q "ifaces.txt" "$W/mnt.list" && ! grep -q "run/secrets/tok" "$W/mnt.list" &&
  pass "no /run/secrets stub file left in a layer" || fail "secret stub left: $(grep run/secrets "$W/mnt.list")"
sed -i 's/^RUN --network=none.*$/RUN --network=none true/' "$W/mnt/Dockerfile"
expect_ok "rebuild with --no-cache" $B build --no-cache --secret id=tok,src="$W/secret.txt" -t mnt:2 "$W/mnt"
[ "$($B run --rm mnt:2 cat /count.txt 2>&1)" = 2 ] && pass "a cache mount keeps its contents between builds" || fail "cache mount not kept: $($B run --rm mnt:2 cat /count.txt 2>&1)"
expect_fail "a required secret that was not given" "secret tok is required" $B build --no-cache -t mnt:3 "$W/mnt"
expect_fail "--secret with a missing file" "cannot read" $B build --secret id=tok,src="$W/nope" -t mnt:3 "$W/mnt"
bad mounttype 'unknown type "nfs"' 'FROM base:1\nRUN --mount=type=nfs,target=/x true\n'
bad mountopt 'unknown option "bogus"' 'FROM base:1\nRUN --mount=type=cache,target=/x,bogus=1 true\n'
bad network "network must be default, none or host" 'FROM base:1\nRUN --network=bridge true\n'
bad heredoc 'here-document "EOF" has no terminating line' 'FROM base:1\nRUN <<EOF\necho never closed\n'
bad mountctx "not found in the build context" 'FROM base:1\nRUN --mount=source=nothere,target=/x true\n'
expect_fail "unknown --target" "target stage" $B build --target nope -t x:1 "$W/app"
expect_fail "no context" "CONTEXT" $B build -t x:1
expect_fail "unknown command" "unknown command" $B frobnicate
OCIBUILD_ROOT="$W/envroot" "$BIN/ocibuild" images >/dev/null 2>&1
[ -d "$W/envroot/store/db" ] && pass "\$OCIBUILD_ROOT chooses the local store" || fail "OCIBUILD_ROOT ignored"
env -u OCIBUILD_ROOT XDG_DATA_HOME="$W/xdg" "$BIN/ocibuild" images >/dev/null 2>&1
[ -d "$W/xdg/ocibuild/store/db" ] && pass "\$XDG_DATA_HOME/ocibuild is the default store" || fail "XDG_DATA_HOME ignored"

finish

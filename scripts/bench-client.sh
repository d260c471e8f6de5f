#!/usr/bin/env bash
# Client benchmark (run by `scripts/bench.sh --client`): ocibuild push and
# pull next to `skopeo copy` of the same image, in one run, each tool
# against its own empty ocireg on loopback:
#   push:   a 10-layer image (10 x 20 MiB of random bytes, ~200 MiB) to an
#           empty registry;
#   push 2: the same image with its last layer changed (9 of 10 layers
#           already in the registry);
#   pull:   into an empty store (ocibuild) / an empty directory (skopeo).
# Reports seconds and bytes over loopback (lo's byte counter around each
# step), medians of N runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
NAME=client
source "$(dirname "$0")/bench_lib.sh"
lo_bytes() { awk '$1 == "lo:" {print $2}' /proc/net/dev; }

# timed NAME COMMAND...: appends seconds to $W/NAME.t and loopback bytes to $W/NAME.b
timed() {
  local name="$1"; shift
  sync
  local b0 t0 t1 b1
  b0=$(lo_bytes); t0=$(now)
  "$@" >"$W/last.out" 2>&1 || { echo "$name failed:" >&2; cat "$W/last.out" >&2; exit 1; }
  t1=$(now); b1=$(lo_bytes)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >> "$W/$name.t"
  echo $((b1 - b0)) >> "$W/$name.b"
}

# The image, twice: v2 differs from v1 in its last layer only. Built with
# ocibuild, saved as an OCI layout for skopeo (same blobs, same digests).
mkdir -p "$W/ctx"
printf 'FROM scratch\n' > "$W/ctx/Dockerfile"
for i in $(seq 0 9); do
  head -c $((20 << 20)) /dev/urandom > "$W/ctx/f$i"
  printf 'COPY f%d /data/f%d\n' "$i" "$i" >> "$W/ctx/Dockerfile"
done
B="$BIN/ocibuild --root $W/build"
$B build -t bench/img:1 "$W/ctx" >/dev/null
head -c $((20 << 20)) /dev/urandom > "$W/ctx/f9"
$B build -t bench/img:2 "$W/ctx" >/dev/null
for v in 1 2; do
  $B save -o "$W/img$v.tar" "bench/img:$v" >/dev/null
  mkdir -p "$W/layout$v" && tar -xf "$W/img$v.tar" -C "$W/layout$v"
done
REF1=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$W/layout1/index.json")
REF2=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$W/layout2/index.json")
SIZE=$(du -sb "$W/layout1/blobs" | cut -f1)

echo "image: 10 layers, $((SIZE >> 20)) MiB; $RUNS runs; median shown" >&2
for run in $(seq "$RUNS"); do
  start_ocireg "o$run"; RO=$REG
  start_ocireg "s$run"; RS=$REG
  P="$BIN/ocibuild --root $W/p$run"
  $B tag bench/img:1 "$RO/bench/img:1"; $B tag bench/img:2 "$RO/bench/img:2"
  timed push.ocib $B push "$RO/bench/img:1"
  timed push.skopeo $S copy --dest-tls-verify=false "oci:$W/layout1:$REF1" "docker://$RS/bench/img:1"
  timed push2.ocib $B push "$RO/bench/img:2"
  timed push2.skopeo $S copy --dest-tls-verify=false "oci:$W/layout2:$REF2" "docker://$RS/bench/img:2"
  timed pull.ocib $P pull "$RO/bench/img:1"
  timed pull.skopeo $S copy --src-tls-verify=false "docker://$RS/bench/img:1" "dir:$W/dir$run"
  echo "  run $run: seconds push $(tail -1 "$W/push.ocib.t")/$(tail -1 "$W/push.skopeo.t")" \
    "push2 $(tail -1 "$W/push2.ocib.t")/$(tail -1 "$W/push2.skopeo.t")" \
    "pull $(tail -1 "$W/pull.ocib.t")/$(tail -1 "$W/pull.skopeo.t") (ocibuild/skopeo)" >&2
  rm -rf "$W/p$run" "$W/dir$run"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == 0) print "-"; else printf "%.2fx", b / a}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
row() { printf '| %-52s | %10s | %10s | %8s |\n' "$1" "$2" "$3" "$4"; }
row "workload" "ocibuild" "skopeo" "speed-up"
row "---" "---:" "---:" "---:"
for step in push push2 pull; do
  case $step in
    push) label="push, empty registry" ;;
    push2) label="push, 9 of 10 layers already there" ;;
    pull) label="pull into an empty store / directory" ;;
  esac
  to=$(median < "$W/$step.ocib.t"); ts=$(median < "$W/$step.skopeo.t")
  bo=$(median < "$W/$step.ocib.b"); bs=$(median < "$W/$step.skopeo.b")
  row "$label (s)" "$to" "$ts" "$(ratio "$to" "$ts")"
  row "$label (MiB over loopback)" "$(mib "$bo")" "$(mib "$bs")" ""
done

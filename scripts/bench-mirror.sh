#!/usr/bin/env bash
# Mirror benchmark (run by `scripts/bench.sh --mirror`): an upstream ocireg
# holding a 5-layer image (5 x 40 MiB of random bytes, 200 MiB); pulls with
# `skopeo copy ... dir:` of
#   cold:  through an ocireg mirror that has never seen the image, next to a
#          pull straight from the upstream (target: under 10% overhead);
#   warm:  from the ocireg mirror again, next to Distribution 2.8 in proxy
#          mode (`proxy: remoteurl:`) in front of the same upstream, after
#          one pull through it.
# Medians of N runs; a new image (tag) per run, so every cold pull is cold.
# The mirror runs with "written_cache_mib": 128 ($MIRROR_CACHE_MIB): its
# writes then recycle page cache instead of taking memory this VM has not
# touched before, which costs about 2.5 s per GiB here (docs/DESIGN.md);
# with the default 1024 the cold pulls of runs 3-5 were about 25% slower.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
NAME=mirror
source "$(dirname "$0")/bench_lib.sh"
start_ocireg up; UP=$REG
echo "{\"written_cache_mib\": ${MIRROR_CACHE_MIB:-128}}" > "$W/m.json"; start_ocireg mirror --config "$W/m.json" --mirror "http://$UP"; MIR=$REG
start_distribution "proxy:
  remoteurl: http://$UP"

pull() {  # pull NAME HOST/REPO:TAG -> seconds appended to $W/NAME.t
  rm -rf "$W/out"; sync
  local t0 t1; t0=$(now)
  $S copy --src-tls-verify=false "docker://$2" "dir:$W/out" >"$W/last.out" 2>&1 ||
    { echo "pull $1 of $2 failed:" >&2; cat "$W/last.out" >&2; exit 1; }
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >> "$W/$1.t"
}

mkdir -p "$W/ctx"
echo "image: 5 layers x 40 MiB; $RUNS runs; median shown" >&2
for run in $(seq "$RUNS"); do
  printf 'FROM scratch\n' > "$W/ctx/Dockerfile"
  for i in $(seq 0 4); do
    head -c $((40 << 20)) /dev/urandom > "$W/ctx/f$i"
    printf 'COPY f%d /data/f%d\n' "$i" "$i" >> "$W/ctx/Dockerfile"
  done
  B="$BIN/ocibuild --root $W/build"
  $B build -t "$UP/library/img:$run" "$W/ctx" >/dev/null
  $B push "$UP/library/img:$run" >/dev/null
  # Cold: alternate which goes first, so neither always finds the
  # upstream's files in the page cache.
  if [ $((run % 2)) = 1 ]; then
    pull direct "$UP/library/img:$run"; pull cold "$MIR/library/img:$run"
  else
    pull cold "$MIR/library/img:$run"; pull direct "$UP/library/img:$run"
  fi
  pull warm "$MIR/library/img:$run"
  pull distwarmup "$DIST/library/img:$run"
  pull distwarm "$DIST/library/img:$run"
  echo "  run $run: seconds direct $(tail -1 "$W/direct.t"), mirror cold $(tail -1 "$W/cold.t")," \
    "mirror warm $(tail -1 "$W/warm.t"), Distribution proxy first $(tail -1 "$W/distwarmup.t") then warm $(tail -1 "$W/distwarm.t")" >&2
done

d=$(median < "$W/direct.t"); c=$(median < "$W/cold.t"); w=$(median < "$W/warm.t"); dw=$(median < "$W/distwarm.t")
row() { printf '| %-50s | %10s | %10s | %10s |\n' "$1" "$2" "$3" "$4"; }
row "pull of 5 x 40 MiB with skopeo (s)" "ocireg" "reference" "ratio"
row "---" "---:" "---:" "---:"
row "cold, through the mirror vs straight from upstream" "$c" "$d" "$(awk -v a="$c" -v b="$d" 'BEGIN {printf "%+.1f%%", (a / b - 1) * 100}')"
row "warm, ocireg mirror vs Distribution proxy" "$w" "$dw" "$(awk -v a="$w" -v b="$dw" 'BEGIN {printf "%.2fx", b / a}')"

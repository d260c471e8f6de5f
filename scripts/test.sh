#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   1. the Release build: every ctest test (unit, conformance, hardening,
#      interop with real clients, builds, mirror);
#   2. an ASan+UBSan build (clang): the doctest suites (label "unit"), the
#      real ocireg under the sanitizers, then each libFuzzer target for
#      OCIB_FUZZ_SECONDS (default 30) from its seed corpus;
#   3. a TSan build: the store concurrency test, the registry conformance
#      suite (256 concurrent connections among them), the hardening suite
#      (400 slowloris connections, caps, limits) and the builder's end to
#      end suite (stages built in parallel, background layer compression)
#      and the registry on S3 (tests/s3).
# OCIB_SANITIZERS=0 runs phase 1 only. Extra arguments go to phase 1's
# ctest. Ends with "N passed, M failed" over all phases.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
ocib_install "${OCIB_PACKAGES[@]}"
sanitizers="${OCIB_SANITIZERS:-1}"
[ "$sanitizers" = 1 ] && ocib_install "${OCIB_SANITIZER_PACKAGES[@]}"

passed=0
failed=0
failures=()

# Adds the counts of a ctest log ("N% tests passed, F tests failed out of T").
count_ctest() {
  local log="$1" phase="$2" line total bad
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    failures+=("$phase: no ctest summary")
    return
  fi
  bad=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed.*/\1/')
  total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  [ "$bad" -gt 0 ] && failures+=("$phase: $bad failed")
  return 0
}

# Phase 1: Release.
ocib_build "$OCIB_ROOT/build" Release || exit 1
log1=$(mktemp)
(cd "$OCIB_ROOT/build" && ctest --output-on-failure "$@") 2>&1 | tee "$log1"
count_ctest "$log1" release

if [ "$sanitizers" = 1 ]; then
  # Phase 2: ASan + UBSan, and the fuzzers built with the same flags.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  export LSAN_OPTIONS="suppressions=$OCIB_ROOT/tests/lsan.supp"
  echo "== ASan+UBSan build"
  if ocib_build "$OCIB_ROOT/build-asan" RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DOCIB_SANITIZE=address,undefined -DOCIB_FUZZ=ON >/dev/null; then
    log2=$(mktemp)
    (cd "$OCIB_ROOT/build-asan" && ctest --output-on-failure -L 'unit|sanitize') 2>&1 | tee "$log2"
    count_ctest "$log2" asan
    secs="${OCIB_FUZZ_SECONDS:-30}"
    for f in http_head manifest reference dockerfile tar config auth; do
      corpus=$(mktemp -d)
      cp "$OCIB_ROOT/tests/fuzz/corpus/$f/"* "$corpus/"
      flog=$(mktemp)
      if (cd "$corpus" && "$OCIB_ROOT/build-asan/bin/${f}_fuzz" -max_total_time="$secs" \
            -rss_limit_mb=2048 -print_final_stats=1 "$corpus" >"$flog" 2>&1); then
        passed=$((passed + 1))
        echo "fuzz $f: ok, $(grep -E 'stat::number_of_executed_units' "$flog" | awk '{print $2}') runs in ${secs}s"
      else
        failed=$((failed + 1))
        failures+=("fuzz $f")
        echo "fuzz $f: FAILED"
        tail -40 "$flog"
      fi
      rm -rf "$corpus" "$flog"
    done
  else
    failed=$((failed + 1))
    failures+=("asan build")
  fi

  # Phase 3: TSan.
  echo "== TSan build"
  if OCIB_TARGETS="ocireg ocibuild http-load store_concurrency_test registry_conformance_test hardening_test" \
      ocib_build "$OCIB_ROOT/build-tsan" RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DOCIB_SANITIZE=thread >/dev/null; then
    log3=$(mktemp)
    (cd "$OCIB_ROOT/build-tsan" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$OCIB_ROOT/tests/tsan.supp" \
      ctest --output-on-failure -R '^(store_concurrency_test|registry_conformance_test|hardening_test|build_e2e|conformance_tls_auth|registry_auth|gc|metrics|registry_s3|registry_pg)$') 2>&1 | tee "$log3"
    count_ctest "$log3" tsan
  else
    failed=$((failed + 1))
    failures+=("tsan build")
  fi
fi

for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Every C++ source (src/, tests/, tools/) is formatted as .clang-format
# says (Google style): clang-format --dry-run -Werror reports each file that
# is not. Reformat with: clang-format -i $(git ls-files '*.cc' '*.h')
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed"; echo "0 passed, 1 failed"; exit 1; }
mapfile -t files < <(find src tests tools -name '*.cc' -o -name '*.h' | sort)
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f"
    bad=$((bad + 1))
  fi
done
echo "${#files[@]} files checked"
echo "$(( ${#files[@]} - bad )) passed, $bad failed"
[ "$bad" -eq 0 ]

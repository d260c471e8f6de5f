#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ocib_install "${OCIB_PACKAGES[@]}"
ocib_build "$OCIB_ROOT/build" Release
cd "$OCIB_ROOT/build"
ctest --output-on-failure "$@"

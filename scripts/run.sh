#!/usr/bin/env bash
# Installs what is missing, builds (Release) and starts the registry on
# 127.0.0.1:5000 with its store under ./data. Extra arguments go to
# `ocireg serve` and override the config file.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ocib_install "${OCIB_PACKAGES[@]}"
ocib_build "$OCIB_ROOT/build" Release
cd "$OCIB_ROOT"
exec "$OCIB_ROOT/build/bin/ocireg" serve --config conf/registry.json \
  --listen 127.0.0.1:5000 --root ./data "$@"

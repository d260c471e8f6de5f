# For the client tests (source it after script_lib.sh, with W, BIN and the
# PIDS array set): start_registries starts the real ocireg and, when
# installed, Debian's Distribution 2.8 (docker-registry) on loopback, each
# with its store under $W, and sets REGS (host:port of each, ocireg first)
# and LOGS (their access logs). Every PID goes into PIDS for cleanup.
# DIST_EXTRA_YAML, when set, is appended to Distribution's config.
start_registries() {
  "$BIN/ocireg" serve --listen 127.0.0.1:0 --root "$W/ocireg" --port-file "$W/port" >"$W/ocireg.log" 2>&1 &
  PIDS+=($!)
  local i r
  for i in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
  REGS=("127.0.0.1:$(cat "$W/port")")
  LOGS=("$W/ocireg.log")
  if command -v docker-registry >/dev/null; then
    local dp; dp=$(free_port)
    printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s/dist\n%shttp:\n  addr: 127.0.0.1:%s\n' \
      "$W" "${DIST_EXTRA_YAML:-}" "$dp" > "$W/dist.yml"
    docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
    PIDS+=($!)
    REGS+=("127.0.0.1:$dp")
    LOGS+=("$W/dist.log")
  fi
  for r in "${REGS[@]}"; do
    for i in $(seq 100); do curl -sf "http://$r/v2/" >/dev/null && break; sleep 0.05; done
  done
}

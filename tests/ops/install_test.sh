#!/usr/bin/env bash
# Packaging (issue 15): `cmake --install` (with DESTDIR, as packagers run
# it) places both binaries, ocireg's config, its systemd unit and user;
# systemd's own tools check the unit (verify, and the offline security
# review of its hardening); --version names version and commit; the
# installed ocireg serves as an unprivileged user with its state in a
# directory of its own, as the unit runs it.
source "$(dirname "$0")/../interop/lib.sh"
set +e
W=$WORK
cd "$W"
BUILD="$(cd "$BIN_DIR/.." && pwd)"
DEST="$W/root"
DESTDIR="$DEST" cmake --install "$BUILD" > install.log 2>&1 &&
  pass "cmake --install with DESTDIR" || { fail "cmake --install"; tail -5 install.log; }
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
ROOT="$DEST$PREFIX"
for f in bin/ocireg bin/ocibuild lib/systemd/system/ocireg.service lib/sysusers.d/ocireg.conf \
         etc/ocireg/registry.json share/doc/ocibuild/README.md; do
  [ -e "$ROOT/$f" ] && pass "installed $PREFIX/$f" || fail "missing $PREFIX/$f"
done
UNIT="$ROOT/lib/systemd/system/ocireg.service"
grep -q "^ExecStart=$PREFIX/bin/ocireg serve --config $PREFIX/etc/ocireg/registry.json --root /var/lib/ocireg$" "$UNIT" &&
  pass "the unit runs the installed binary with the installed config" || fail "ExecStart: $(grep ExecStart "$UNIT")"
grep -qE '@[A-Z_]+@' "$UNIT" && fail "unfilled @...@ in the unit" || pass "every install path is filled in"
for opt in User=ocireg StateDirectory=ocireg NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
           PrivateTmp=yes CapabilityBoundingSet= ; do
  grep -qx "$opt" "$UNIT" && pass "unit: $opt" || fail "unit lacks $opt"
done

# --version
v=$("$ROOT/bin/ocireg" --version)
echo "$v" | grep -qE '^ocireg [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]{12}|unknown\)$' &&
  pass "ocireg --version: $v" || fail "ocireg --version: $v"
v=$("$ROOT/bin/ocibuild" --version)
echo "$v" | grep -qE '^ocibuild [0-9]+\.[0-9]+\.[0-9]+ \(commit ' &&
  pass "ocibuild --version: $v" || fail "ocibuild --version: $v"
[ "$("$ROOT/bin/ocireg" --version | awk '{print $2}')" = "$("$ROOT/bin/ocibuild" --version | awk '{print $2}')" ] &&
  pass "both binaries carry the same version" || fail "versions differ"

# systemd's checks, against the unit as installed (paths inside DESTDIR).
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$W/units"
  sed "s|$PREFIX/|$ROOT/|g" "$UNIT" > "$W/units/ocireg.service"
  if systemd-analyze verify --man=no "$W/units/ocireg.service" > verify.out 2>&1; then
    pass "systemd-analyze verify accepts the unit"
  else
    fail "systemd-analyze verify"; cat verify.out
  fi
  systemd-analyze security --offline=yes --no-pager "$W/units/ocireg.service" > security.out 2>&1
  score=$(sed -n 's/.*Overall exposure level for ocireg.service: \([0-9.]*\).*/\1/p' security.out)
  [ -n "$score" ] && python3 -c "import sys; sys.exit(0 if float('$score') <= 2.0 else 1)" &&
    pass "systemd-analyze security: exposure $score (2.0 or less: OK)" || { fail "security exposure: ${score:-none}"; tail -5 security.out; }
else
  fail "systemd-analyze is not installed"
fi

# The installed ocireg as an unprivileged user, its state in its own dir.
STATE="$W/state"
mkdir -p "$STATE" && chown nobody:nogroup "$STATE" && chmod 750 "$STATE"
chmod o+x "$W" "$DEST" 2>/dev/null
P=$(free_port)
setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
  "$ROOT/bin/ocireg" serve --config "$ROOT/etc/ocireg/registry.json" --root "$STATE/data" \
  --listen "127.0.0.1:$P" > nobody.out 2>&1 &
PIDS+=($!)
for i in $(seq 100); do curl -sf "http://127.0.0.1:$P/v2/" >/dev/null && break; sleep 0.05; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/v2/")" = 200 ] &&
  pass "the installed ocireg serves as nobody with the installed config" || { fail "as nobody"; cat nobody.out; }
[ "$(stat -c %U "$STATE/data")" = nobody ] && pass "its store belongs to the service user" || fail "store owner: $(stat -c %U "$STATE/data")"
finish

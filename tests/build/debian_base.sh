# ensure_debian_base WORKDIR: makes sure $DEBIAN_BASE, a Debian bookworm
# minbase root filesystem tarball made by debootstrap from the machine's
# apt mirror, exists (it is cached in /var/cache/ocibuild-test between
# runs). Returns non-zero when debootstrap fails. Source this file.
DEBIAN_BASE=/var/cache/ocibuild-test/debian-minbase-bookworm.tgz
ensure_debian_base() {
  [ -s "$DEBIAN_BASE" ] && return 0
  local cache; cache=$(dirname "$DEBIAN_BASE")
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$cache"
  (
    flock 9
    [ -s "$DEBIAN_BASE" ] && exit 0
    rm -rf "$cache/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" "$mirror" >"$1/debootstrap.log" 2>&1 &&
      tar --numeric-owner -C "$cache/rootfs.tmp" -czf "$DEBIAN_BASE.tmp" . && mv "$DEBIAN_BASE.tmp" "$DEBIAN_BASE"
    rc=$?
    rm -rf "$cache/rootfs.tmp"
    exit $rc
  ) 9>"$cache/.debian-base.lock"
}

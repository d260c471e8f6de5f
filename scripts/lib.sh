# Shared by scripts/*.sh: install missing Debian packages and build.
# Source it; it defines functions only.

OCIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Build and test dependencies (Debian 12 package names).
OCIB_PACKAGES=(cmake g++ make pkg-config libssl-dev librocksdb-dev
  libcpp-httplib-dev nlohmann-json3-dev libpq-dev postgresql libzstd-dev zlib1g-dev liblzma-dev libbz2-dev libcrypt-dev doctest-dev
  xz-utils bzip2 clang-format
  curl jq zstd skopeo busybox-static docker.io podman containerd runc debootstrap
  docker-registry apache2-utils nginx-light python3-jwt python3-cryptography prometheus
  chromium python3-websocket ceph-mon ceph-osd radosgw ceph-common iproute2)

# The sanitizer and fuzzing builds of scripts/test.sh (clang with its
# runtimes and libFuzzer).
OCIB_SANITIZER_PACKAGES=(clang-14 libclang-rt-14-dev libfuzzer-14-dev)

# Installs the packages in "$@" that are not installed yet; quiet when none
# are missing.
ocib_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ocib_build DIR BUILD_TYPE [extra cmake args...]; builds every target, or
# only those in $OCIB_TARGETS (space-separated).
ocib_build() {
  local dir="$1" type="$2"
  shift 2
  cmake -S "$OCIB_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null || return 1
  local targets=()
  for t in ${OCIB_TARGETS:-}; do targets+=(--target "$t"); done
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
}

# Prints a TCP port on 127.0.0.1 that no socket uses. It is drawn from below
# the kernel's ephemeral range, so an outgoing connection cannot take it
# between this check and the caller's bind.
free_port() {
  local lo=32768 p
  read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
  while :; do
    p=$((10000 + RANDOM % (lo - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    if command -v ss >/dev/null; then
      [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] || continue
    fi
    echo "$p"; return
  done
}

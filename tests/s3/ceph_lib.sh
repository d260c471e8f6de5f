# A throwaway single-node Ceph cluster with an S3 gateway, from Debian's
# packages: one monitor, one OSD on memstore (RAM only), radosgw (beast)
# on a loopback port, pool size 1, cephx off, no systemd. Source it, then
#   start_ceph DIR [MEMSTORE_MIB]   # DIR short: admin socket paths < 108 chars
# sets S3_ENDPOINT (http://127.0.0.1:PORT), S3_TLS_ENDPOINT (https, its
# certificate for 127.0.0.1 from a CA made here, S3_CA), S3_ACCESS_KEY,
# S3_SECRET_KEY and CEPH_PIDS (mon, osd, rgw); stop_ceph kills them (SIGKILL: SIGTERM makes the
# memstore OSD write its memory to disk) and waits for each.
# Needs free_port (scripts/lib.sh).

CEPH_PIDS=()

ceph_wait_port() {  # ceph_wait_port PORT SECONDS
  local i
  for i in $(seq $(($2 * 20))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# A port chosen free may be taken before a daemon binds it: each start
# that fails is stopped, wiped and tried again on fresh ports.
start_ceph() {
  local attempt
  for attempt in 1 2 3; do
    start_ceph_once "$@" && return 0
    echo "ceph start attempt $attempt failed" >&2
    stop_ceph_daemons
    rm -rf "$1"
  done
  return 1
}

start_ceph_once() {
  local dir="$1" mem_mib="${2:-4096}"
  CEPH_DIR="$dir"
  mkdir -p "$dir"/{mon,osd,run,log}
  local fsid mon_port rgw_port tls_port
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  tls_port=$(free_port)
  mkdir -p "$dir/tls"
  (cd "$dir/tls" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ceph-test-ca -keyout ca.key -out ca.pem &&
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout rgw.key -out rgw.csr &&
    printf 'subjectAltName=IP:127.0.0.1\n' > san.ext &&
    openssl x509 -req -in rgw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out rgw.pem
  ) >/dev/null 2>&1 || { echo "cannot make the gateway's certificate"; return 1; }
  cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr1 = false
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
paxos propose interval = 0.05
ms bind retry count = 1
ms bind retry delay = 1
mon data = $dir/mon
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = $((mem_mib * 1024 * 1024))
osd max object size = 1073741824
rgw data = $dir/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$dir/tls/rgw.pem ssl_private_key=$dir/tls/rgw.key
rgw thread pool size = 64
rgw dns name = 127.0.0.1
rgw gc obj min wait = 10
rgw gc processor period = 10
CONF
  local conf="$dir/ceph.conf"
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1
  ceph-mon -c "$conf" -i a -f >"$dir/log/mon.out" 2>&1 &
  CEPH_PIDS+=($!)
  ceph_wait_port "$mon_port" 20 || { echo "ceph-mon did not start"; tail "$dir/log/"*; return 1; }
  kill -0 "${CEPH_PIDS[-1]}" 2>/dev/null || { echo "ceph-mon exited"; tail "$dir/log/"*; return 1; }
  local id
  id=$(timeout 15 ceph -c "$conf" osd create) || { echo "osd create failed"; return 1; }
  ceph-osd -c "$conf" -i "$id" --mkfs >/dev/null 2>&1
  ceph-osd -c "$conf" -i "$id" -f >"$dir/log/osd.out" 2>&1 &
  CEPH_PIDS+=($!)
  local i
  for i in $(seq 200); do
    timeout 5 ceph -c "$conf" osd stat 2>/dev/null | grep -q "1 up" && break
    sleep 0.1
  done
  mkdir -p "$dir/rgw"
  radosgw -c "$conf" -n client.rgw -f >"$dir/log/rgw.out" 2>&1 &
  CEPH_PIDS+=($!)
  ceph_wait_port "$rgw_port" 60 || { echo "radosgw did not start"; tail -20 "$dir/log/"*; return 1; }
  # The port answers; make sure it is this gateway (another process may
  # have taken the port first).
  sleep 0.3
  kill -0 "${CEPH_PIDS[-1]}" 2>/dev/null && curl -s "http://127.0.0.1:$rgw_port/" | grep -q ListAllMyBucketsResult ||
    { echo "radosgw is not answering on its port"; tail -5 "$dir/log/rgw.out"; return 1; }
  S3_ACCESS_KEY="OCIBTESTACCESSKEY000"
  S3_SECRET_KEY="ocibtestsecretkey0000000000000000000000"
  timeout 30 radosgw-admin -c "$conf" user create --uid=ocib --display-name=ocib \
    --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null || {
    echo "radosgw-admin user create failed"; return 1; }
  S3_ENDPOINT="http://127.0.0.1:$rgw_port"
  S3_TLS_ENDPOINT="https://127.0.0.1:$tls_port"
  S3_CA="$dir/tls/ca.pem"
  CEPH_DIR="$dir"
}

# restart_rgw: kills radosgw (CEPH_PIDS[2]) and starts it again on the same
# port; the bucket's data is in the OSD and survives.
restart_rgw() {
  kill -9 "${CEPH_PIDS[2]}" 2>/dev/null; wait "${CEPH_PIDS[2]}" 2>/dev/null
  radosgw -c "$CEPH_DIR/ceph.conf" -n client.rgw -f >>"$CEPH_DIR/log/rgw.out" 2>&1 &
  CEPH_PIDS[2]=$!
  local i
  for i in $(seq 200); do
    curl -s "$S3_ENDPOINT/" 2>/dev/null | grep -q ListAllMyBucketsResult && return 0
    sleep 0.1
  done
  return 1
}

stop_ceph_daemons() {
  local p
  for p in "${CEPH_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${CEPH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  CEPH_PIDS=()
}

stop_ceph() {
  stop_ceph_daemons
  [ -n "${CEPH_DIR:-}" ] && rm -rf "$CEPH_DIR"
  CEPH_DIR=""
}

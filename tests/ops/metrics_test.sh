#!/usr/bin/env bash
# Metrics and health (issue 15), checked by the real Prometheus: ocireg
# serves /metrics, /healthz and /readyz on its debug address only;
# promtool lints the exposition; a Prometheus server (Debian's package)
# scrapes it while skopeo pushes and pulls with a password, and the series
# are read back through Prometheus's HTTP query API.
source "$(dirname "$0")/../interop/lib.sh"
set +e
W=$WORK
S="skopeo --insecure-policy"
cd "$W"
for tool in prometheus promtool htpasswd; do
  command -v $tool >/dev/null || { fail "$tool is not installed"; finish; exit 1; }
done

htpasswd -Bbn -C 10 ops s3cret > htpasswd 2>/dev/null
DP=$(free_port)
cat > ocireg.json <<JSON
{"debug": {"listen": "127.0.0.1:$DP"},
 "auth": {"htpasswd": {"path": "$W/htpasswd"}},
 "gc": {"interval": "0s"}}
JSON
start_registry r --config "$W/ocireg.json"
R=$REG_r
D=127.0.0.1:$DP
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# --- the debug address, and nothing of it on the public one ---------------
[ "$(code "http://$D/healthz")" = 200 ] && pass "/healthz answers 200" || fail "/healthz"
[ "$(code "http://$D/readyz")" = 200 ] && pass "/readyz answers 200 (store open, takes a write)" || fail "/readyz"
[ "$(code -X POST "http://$D/metrics")" = 405 ] && pass "POST /metrics is 405" || fail "POST /metrics"
[ "$(code "http://$D/v2/")" = 404 ] && pass "the debug address serves no API" || fail "API on the debug address"
for p in /metrics /healthz /readyz; do
  c=$(code -u ops:s3cret "http://$R$p")
  [ "$c" = 404 ] && pass "$p is not on the public address ($c)" || fail "$p on the public address: $c"
done
curl -s "http://$D/metrics" -o first.prom
promtool check metrics < first.prom > lint.out 2>&1 &&
  pass "promtool check metrics accepts the exposition" || { fail "promtool check metrics"; head -20 lint.out; }
grep -q '^ocireg_build_info{version="[0-9.]*",commit="[0-9a-z]*"} 1$' first.prom &&
  pass "build info carries version and commit" || fail "build info: $(grep build_info first.prom)"

# --- Prometheus scraping it ---------------------------------------------------
cat > prometheus.yml <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ocireg
    static_configs: [{targets: ["$D"]}]
YML
# Up to 3 tries, each on a fresh port (another process may take a port
# between free_port and the bind); its log is shown if none comes up.
for try in 1 2 3; do
  PP=$(free_port)
  rm -rf "$W/prom"
  prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom" \
    --web.listen-address="127.0.0.1:$PP" > prometheus.log 2>&1 &
  PROM=$!; PIDS+=($PROM)
  for i in $(seq 200); do curl -sf "http://127.0.0.1:$PP/-/ready" >/dev/null && break 2; sleep 0.2; done
  echo "    prometheus did not become ready on $PP (try $try):"; tail -5 prometheus.log | sed 's/^/    /'
  kill "$PROM" 2>/dev/null; wait "$PROM" 2>/dev/null
done
# query EXPR -> the first result's value ("" if none)
query() {
  curl -s --get --data-urlencode "query=$1" "http://127.0.0.1:$PP/api/v1/query" |
    python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
# wait_query EXPR PYTHON_CONDITION_ON_v: polls until it holds (10 s).
wait_query() {
  local v i
  for i in $(seq 50); do
    v=$(query "$1")
    [ -n "$v" ] && python3 -c "import sys; v=float('$v'); sys.exit(0 if ($2) else 1)" && { echo "$v"; return 0; }
    sleep 0.2
  done
  echo "${v:-none}"; return 1
}

v=$(wait_query 'up{job="ocireg"}' 'v == 1') && pass "Prometheus scrapes ocireg (up = $v)" || { fail "up: $v"; tail -20 prometheus.log; }

make_layout "$W/img" v1 metrics
check "skopeo pushes with a password" $S copy --dest-tls-verify=false --dest-creds ops:s3cret "oci:$W/img:v1" "docker://$R/team/app:v1"
check "skopeo pulls it back" $S copy --src-tls-verify=false --src-creds ops:s3cret "docker://$R/team/app:v1" "oci:$W/pulled:v1"
[ "$(code -u ops:wrong "http://$R/v2/")" = 401 ] && pass "a wrong password gets 401" || fail "wrong password"
curl -s -u ops:s3cret -X POST "http://$R/admin/gc?min_age=0s" > gc.json

v=$(wait_query 'sum(ocireg_http_requests_total{endpoint="manifest",method="PUT",code="201"})' 'v >= 1') &&
  pass "Prometheus: manifest PUT 201 counted ($v)" || fail "manifest PUT: $v"
v=$(wait_query 'sum(ocireg_http_requests_total{endpoint="blob",method="GET",code="200"})' 'v >= 2') &&
  pass "Prometheus: blob GETs of the pull counted ($v)" || fail "blob GET: $v"
v=$(wait_query 'ocireg_uploads_committed_total' 'v >= 2') &&
  pass "Prometheus: uploads committed ($v)" || fail "uploads committed: $v"
v=$(wait_query 'ocireg_store_blobs' 'v >= 2') &&
  pass "Prometheus: blobs in the store ($v)" || fail "store blobs: $v"
v=$(wait_query 'ocireg_store_blob_bytes' 'v > 1000') &&
  pass "Prometheus: bytes of the store's blobs ($v)" || fail "store bytes: $v"
v=$(wait_query 'ocireg_auth_checks_total{kind="basic",result="failure"}' 'v >= 1') &&
  pass "Prometheus: the failed login ($v)" || fail "auth failure: $v"
v=$(wait_query 'ocireg_auth_checks_total{kind="basic",result="success"}' 'v >= 2') &&
  pass "Prometheus: successful logins ($v)" || fail "auth success: $v"
v=$(wait_query 'ocireg_gc_runs_total{result="ok"}' 'v >= 1') &&
  pass "Prometheus: the GC run ($v)" || fail "gc runs: $v"
v=$(wait_query 'ocireg_http_received_bytes_total' 'v > 1000') &&
  pass "Prometheus: bytes received ($v)" || fail "received bytes: $v"
v=$(wait_query 'ocireg_http_sent_bytes_total' 'v > 1000') &&
  pass "Prometheus: bytes sent ($v)" || fail "sent bytes: $v"
v=$(wait_query 'histogram_quantile(0.99, sum by (le) (rate(ocireg_http_request_duration_seconds_bucket[1m])))' 'v > 0') &&
  pass "Prometheus: request duration p99 from the histogram ($v s)" || fail "duration p99: $v"
v=$(wait_query 'process_resident_memory_bytes' 'v > 1e6') &&
  pass "Prometheus: resident memory ($v)" || fail "rss: $v"
v=$(wait_query 'process_open_fds' 'v > 3') &&
  pass "Prometheus: open descriptors ($v)" || fail "fds: $v"

# No repository, tag or user name is a label value.
curl -s "http://$D/metrics" -o later.prom
grep -qE 'team/app|"ops"|v1"' later.prom && fail "a repository, tag or user name leaked into labels" ||
  pass "no repository, tag or user name in the labels"

# --- readiness when the store takes no writes ----------------------------------
# A space reserve larger than the disk: writes refused, reads go on.
DP2=$(free_port)
echo "{\"debug\": {\"listen\": \"127.0.0.1:$DP2\"}, \"reserved_space_mib\": 1073741824}" > full.json
start_registry full --config "$W/full.json"
[ "$(code "http://127.0.0.1:$DP2/healthz")" = 200 ] && pass "full disk: /healthz still 200" || fail "full healthz"
c=$(code "http://127.0.0.1:$DP2/readyz")
body=$(curl -s "http://127.0.0.1:$DP2/readyz")
[ "$c" = 503 ] && pass "full disk: /readyz is 503 ($body)" || fail "full readyz: $c $body"
echo "$body" | grep -q "$W" && fail "readyz leaks a path" || pass "readyz names no path"
bad=$(free_port)
echo "{\"listen\": \"127.0.0.1:$bad\", \"debug\": {\"listen\": \"127.0.0.1:$bad\"}}" > same.json
"$BIN_DIR/ocireg" serve --config same.json > same.out 2>&1 &
sp=$!; PIDS+=($sp)
sleep 0.5
kill -0 $sp 2>/dev/null && fail "debug.listen equal to listen was accepted" ||
  { grep -q 'debug.listen' same.out && pass "debug.listen equal to listen is refused: $(tail -1 same.out)" || fail "same listen: $(cat same.out)"; }
finish

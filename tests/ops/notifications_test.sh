#!/usr/bin/env bash
# Notifications (issue 15): webhooks in Distribution's envelope, delivered
# durably. A receiver (tests/ops/webhook_receiver.py) that answers, fails,
# is slow, and is down across a kill -9 of the registry; every event
# arrives, in order per repository, once after dropping duplicates by id
# (at-least-once). Per-endpoint headers, filters by repository and action,
# ignoredmediatypes. The same push to Distribution 2.8 with notifications
# to the same receiver gives events of the same shape.
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../interop/lib.sh"
set +e
W=$WORK
S="skopeo --insecure-policy"
cd "$W"
RP=$(free_port)
mkdir -p recv
echo ok > recv/mode
start_receiver() {
  /usr/bin/python3 "$HERE/webhook_receiver.py" "$RP" "$W/recv" > recv.log 2>&1 &
  RECV=$!; PIDS+=($RECV)
  for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$RP/" && break; sleep 0.05; done
}
start_receiver
DP=$(free_port)
cat > ocireg.json <<JSON
{"debug": {"listen": "127.0.0.1:$DP"},
 "notifications": {"endpoints": [
   {"name": "main", "url": "http://127.0.0.1:$RP/main",
    "headers": {"Authorization": ["Bearer sekrit"]}, "timeout": "1s", "backoff": "1s"},
   {"name": "pushes", "url": "http://127.0.0.1:$RP/pushes", "actions": ["push"],
    "repositories": ["team/**"], "ignoredmediatypes": ["application/octet-stream"]},
   {"name": "off", "url": "http://127.0.0.1:1/never", "disabled": true},
   {"name": "dead", "url": "http://127.0.0.1:1/never", "max_pending": 2, "backoff": "60s", "actions": ["push"]}
 ]}}
JSON
start_registry r --config "$W/ocireg.json"
R=$REG_r
metric() { curl -s "http://127.0.0.1:$DP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# wait_events FILE N: until FILE holds N distinct event ids (30 s).
distinct() { [ -f "$1" ] && python3 -c "import json,sys; print(len({json.loads(l)['id'] for l in open(sys.argv[1])}))" "$1" || echo 0; }
wait_events() {
  local i
  for i in $(seq 150); do [ "$(distinct "$1")" -ge "$2" ] && return 0; sleep 0.2; done
  return 1
}

# --- A: the receiver answers ---------------------------------------------------
make_layout "$W/a" v1 notify-a
make_layout "$W/b" v1 notify-b
make_layout "$W/c" v1 notify-c
$S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$R/team/app:v1" >/dev/null
$S copy --src-tls-verify=false "docker://$R/team/app:v1" "oci:$W/pulled:v1" >/dev/null
CONFIG=$(python3 -c "import json; m=json.load(open('$W/a/blobs/sha256/'+json.load(open('$W/a/index.json'))['manifests'][0]['digest'][7:])); print(m['config']['digest'])")
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$R/v2/team/other/blobs/uploads/?mount=$CONFIG&from=team/app")
[ "$c" = 201 ] && pass "a cross-repository mount" || fail "mount: $c"
# push a: config + layer blobs, manifest; pull: manifest, 2 blobs; mount: 1
wait_events recv/main.events 7 && pass "main receives the push, pull and mount events ($(distinct recv/main.events))" ||
  { fail "main events: $(distinct recv/main.events)"; cat recv.log; }
python3 - "$W/recv/main.events" "$R" <<'PY' && pass "events have Distribution's fields (id, timestamp, action, target with mediaType/size/length/digest/repository/url/tag, request, actor, source)" || fail "event shape"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
acts = [(e["action"], e["target"].get("mediaType", "")) for e in ev]
man = "application/vnd.oci.image.manifest.v1+json"
assert ("push", man) in acts and ("pull", man) in acts, acts
assert ("push", "application/octet-stream") in acts and ("pull", "application/octet-stream") in acts, acts
assert any(a == "mount" for a, _ in acts), acts
for e in ev:
    assert set(e) >= {"id", "timestamp", "action", "target", "request", "actor", "source"}, e
    assert set(e["request"]) >= {"id", "addr", "host", "method", "useragent"}, e
    assert set(e["source"]) >= {"addr", "instanceID"}, e
    t = e["target"]
    assert t["repository"] in ("team/app", "team/other"), t
    if e["action"] in ("push", "pull", "mount"):
        assert t["digest"].startswith("sha256:") and t["size"] == t["length"] > 0, t
        assert t["url"].startswith("http://" + sys.argv[2] + "/v2/"), t
    assert e["timestamp"].endswith("Z") and "T" in e["timestamp"], e
mp = [e for e in ev if e["action"] == "push" and e["target"]["mediaType"] == man][0]
assert mp["target"]["tag"] == "v1" and mp["request"]["method"] == "PUT", mp
mount = [e for e in ev if e["action"] == "mount"][0]
assert mount["target"]["fromRepository"] == "team/app" and mount["target"]["repository"] == "team/other", mount
# Within the repository, the pushes come before the pulls.
order = [e["action"] for e in ev if e["target"]["repository"] == "team/app"]
assert order.index("pull") > max(i for i, a in enumerate(order) if a == "push"), order
PY
grep -q $'^application/vnd.docker.distribution.events.v1+json\tBearer sekrit$' recv/main.headers &&
  pass "Content-Type is Distribution's and the endpoint's headers are sent" || fail "headers: $(head -2 recv/main.headers)"
wait_events recv/pushes.events 1
python3 - "$W/recv/pushes.events" <<'PY' && pass "filters: the push-only, team/** endpoint without blobs gets just the manifest push" || fail "filtered endpoint: $(cat recv/pushes.events)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert len(ev) == 1 and ev[0]["action"] == "push", ev
assert ev[0]["target"]["mediaType"] != "application/octet-stream", ev
PY

p=$(metric 'ocireg_notifications_pending{endpoint="dead"}'); d=$(metric 'ocireg_notifications_dropped_total{endpoint="dead"}')
[ "$p" = 2 ] && [ "${d:-0}" -ge 1 ] && pass "a dead endpoint keeps max_pending (2) events and drops the rest ($d dropped)" ||
  fail "max_pending: pending=$p dropped=$d"
[ -z "$(metric 'ocireg_notifications_pending{endpoint="off"}')" ] && pass "a disabled endpoint has no queue" || fail "disabled endpoint queued"

# --- B: the receiver fails, then recovers -------------------------------------
echo fail > recv/mode
n0=$(distinct recv/main.events)
$S copy --dest-tls-verify=false "oci:$W/b:v1" "docker://$R/team/app:v2" >/dev/null
sleep 2.5
[ "$(distinct recv/main.events)" = "$n0" ] && pass "while the receiver answers 500, nothing is taken" || fail "events taken while failing"
f=$(metric 'ocireg_notifications_failures_total{endpoint="main"}')
p=$(metric 'ocireg_notifications_pending{endpoint="main"}')
[ "${f:-0}" -ge 1 ] && [ "${p:-0}" -ge 3 ] && pass "metrics: $f failed deliveries, $p events pending" || fail "metrics while failing: failures=$f pending=$p"
echo ok > recv/mode
wait_events recv/main.events $((n0 + 3)) && pass "after recovery the waiting events arrive (retried with backoff)" || fail "recovery: $(distinct recv/main.events)"

# --- C: a slow receiver (longer than the 1 s timeout) --------------------------
echo slow > recv/mode
n0=$(distinct recv/main.events)
curl -s -o /dev/null -X DELETE "http://$R/v2/team/app/manifests/$($S inspect --tls-verify=false --raw "docker://$R/team/app:v2" | sha256sum | awk '{print "sha256:"$1}')"
sleep 4
echo ok > recv/mode
wait_events recv/main.events $((n0 + 1)) && pass "a slow receiver gets the delete event (sent again after the timeout)" || fail "slow: $(distinct recv/main.events)"

# --- D: receiver down, registry killed with -9, both back ----------------------
kill "$RECV"; wait "$RECV" 2>/dev/null
n0=$(distinct recv/main.events)
$S copy --dest-tls-verify=false "oci:$W/c:v1" "docker://$R/team/app:v3" >/dev/null
p=$(metric 'ocireg_notifications_pending{endpoint="main"}')
[ "${p:-0}" -ge 3 ] && pass "receiver down: $p events wait in the store" || fail "pending while down: $p"
kill -9 "$PID_r"; wait "$PID_r" 2>/dev/null
start_receiver
start_registry r --config "$W/ocireg.json"
R=$REG_r
wait_events recv/main.events $((n0 + 3)) && pass "after kill -9 and restart the queued events arrive" || fail "after restart: $(distinct recv/main.events) (want $((n0 + 3)))"
sleep 1.5  # anything that would still come

python3 - "$W/recv/main.events" <<'PY' && pass "every event once after dropping duplicate ids, in order per repository: manifest pushes v1, v2, then the delete, then v3" || fail "order or loss"
import json, sys
seen, ev = set(), []
lines = [json.loads(l) for l in open(sys.argv[1])]
for e in lines:
    if e["id"] not in seen:
        seen.add(e["id"]); ev.append(e)
print("    %d events taken, %d distinct" % (len(lines), len(ev)))
app = [e for e in ev if e["target"]["repository"] == "team/app"]
steps = [(e["action"], e["target"].get("tag")) for e in app
         if e["action"] == "delete" or (e["action"] == "push" and e["target"].get("mediaType") != "application/octet-stream")]
assert steps == [("push", "v1"), ("push", "v2"), ("delete", None), ("push", "v3")], steps
ts = [e["timestamp"] for e in app]
assert ts == sorted(ts), "timestamps out of order"
PY

# --- Distribution 2.8 with notifications to the same receiver -------------------
if command -v docker-registry >/dev/null; then
  DR=127.0.0.1:$(free_port)
  cat > dist.yml <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/dist}}
http: {addr: $DR}
notifications:
  endpoints:
    - name: recv
      url: http://127.0.0.1:$RP/dist
      timeout: 1s
      threshold: 5
      backoff: 1s
YML
  docker-registry serve dist.yml > dist.log 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do curl -sf "http://$DR/v2/" >/dev/null && break; sleep 0.05; done
  $S copy --dest-tls-verify=false "oci:$W/a:v1" "docker://$DR/team/app:v1" >/dev/null
  $S copy --src-tls-verify=false "docker://$DR/team/app:v1" "oci:$W/pulled-d:v1" >/dev/null
  for i in $(seq 100); do [ -s recv/dist.events ] && [ "$(grep -c '"pull"' recv/dist.events)" -ge 2 ] && break; sleep 0.1; done
  python3 - "$W/recv/dist.events" "$W/recv/main.events" <<'PY' && pass "same shape as Distribution's events: every field it sends for manifest and blob pushes and pulls, we send" || fail "differs from Distribution"
import json, sys
def shape(path):
    out = {}
    for l in open(path):
        e = json.loads(l)
        t = e["target"]
        kind = (e["action"], "manifest" if t.get("mediaType", "").endswith("+json") else "blob")
        if e["action"] not in ("push", "pull"): continue
        keys = {k for k in e} | {"target." + k for k in t} | {"request." + k for k in e.get("request", {})} | {"source." + k for k in e.get("source", {})}
        out.setdefault(kind, set()).update(keys)
    return out
dist, ours = shape(sys.argv[1]), shape(sys.argv[2])
print("    Distribution sent:", sorted(dist))
ok = True
for kind, keys in dist.items():
    missing = keys - ours.get(kind, set())
    # Distribution omits "tag" on some pulls and adds "references" (the
    # manifest's blobs) only with includereferences.
    missing -= {"target.references"}
    if missing:
        print("    missing for", kind, sorted(missing)); ok = False
sys.exit(0 if ok else 1)
PY
else
  fail "docker-registry (Distribution) is not installed"
fi
finish

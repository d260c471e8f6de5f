#!/usr/bin/env bash
# The Docker tutorial's own example, end to end: a Debian base made with
# debootstrap --variant=minbase (the tarball is cached in
# /var/cache/ocibuild-test between runs), a Dockerfile with apt-get update,
# apt-get install python3-flask, COPY of a small Flask app and an
# ENTRYPOINT; build it, check the history, run it and fetch its page over
# loopback. Needs the Debian archive (as docker build would).
set -uo pipefail
BIN="${OCIB_BIN_DIR:?set OCIB_BIN_DIR to build/bin}"
source "$(dirname "$0")/../script_lib.sh"
test_workdir tutorial
B="$BIN/ocibuild --root $W/root"

source "$(dirname "$0")/debian_base.sh"
if [ ! -s "$DEBIAN_BASE" ]; then
  if ensure_debian_base "$W"; then pass "debootstrap minbase tarball made and cached"
  else fail "debootstrap"; tail -5 "$W/debootstrap.log"; fi
fi
TARBALL=$DEBIAN_BASE

if $B import "$TARBALL" debian:bookworm-minbase >"$W/out" 2>&1; then pass "import the Debian base"; else fail "import"; cat "$W/out"; fi

mkdir -p "$W/ctx/src"
cat > "$W/ctx/src/app.py" <<'PY'
import sys
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from a Flask app built by ocibuild\n"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))
PY
cat > "$W/ctx/Dockerfile" <<'DF'
FROM debian:bookworm-minbase
RUN apt-get update
RUN DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-flask
COPY src/ /opt/myapp/src/
EXPOSE 5000
ENTRYPOINT ["python3", "/opt/myapp/src/app.py"]
DF
if $B build -t myapp:1 "$W/ctx" >"$W/out" 2>&1; then pass "build the Flask image"; else fail "build"; tail -20 "$W/out"; fi
$B history --no-trunc myapp:1 >"$W/hist" 2>&1
if grep -q "apt-get install" "$W/hist" && grep -q "COPY" "$W/hist" && grep -Eq "MB +ocibuild" "$W/hist"; then
  pass "history lists the layers with sizes"
else
  fail "history"; cat "$W/hist"
fi
if $B build -t myapp:1 "$W/ctx" >"$W/out" 2>&1 && [ "$(grep -c 'Using cache' "$W/out")" -eq 3 ]; then
  pass "rebuild is fully cached"
else
  fail "rebuild not cached"; tail -10 "$W/out"
fi

PORT=$(free_port)
$B run myapp:1 "$PORT" >"$W/run.log" 2>&1 &
RUNPID=$!
PIDS+=($RUNPID)
page=""
for i in $(seq 100); do
  page=$(curl -sf "http://127.0.0.1:$PORT/" 2>/dev/null) && break
  sleep 0.1
done
[ "$page" = "Hello from a Flask app built by ocibuild" ] && pass "the app answers over loopback" || { fail "no page"; cat "$W/run.log"; }
kill "$RUNPID"; wait "$RUNPID" 2>/dev/null; RUNPID=""
pgrep -f "/opt/myapp/src/app.py $PORT" >/dev/null && fail "container left running" || pass "stopping ocibuild run stops the container"

finish

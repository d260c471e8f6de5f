#!/usr/bin/python3
"""A webhook receiver for the notification tests.

    webhook_receiver.py PORT OUT_DIR

Serves POSTs on 127.0.0.1:PORT, one at a time. What it does with each is
read from OUT_DIR/mode at that moment: "ok" (answer 200), "fail" (500),
"slow" (wait 3 s, then take the events and answer 200: a sender with a
shorter timeout has given up by then and will send them again). Taken
events are appended to OUT_DIR/<path without slashes>.events, one JSON per
line; each request's Content-Type and Authorization go to
OUT_DIR/<path>.headers.
"""
import http.server
import json
import os
import sys
import time

PORT = int(sys.argv[1])
OUT = sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            with open(os.path.join(OUT, "mode")) as f:
                mode = f.read().strip()
        except OSError:
            mode = "ok"
        name = self.path.strip("/").replace("/", "_") or "root"
        if mode == "fail":
            self.send_response(500)
            self.end_headers()
            return
        if mode == "slow":
            time.sleep(3)
        events = json.loads(body)["events"]
        with open(os.path.join(OUT, name + ".events"), "a") as f:
            for e in events:
                f.write(json.dumps(e, sort_keys=True) + "\n")
        with open(os.path.join(OUT, name + ".headers"), "a") as f:
            f.write("%s\t%s\n" % (self.headers.get("Content-Type"),
                                  self.headers.get("Authorization")))
        self.send_response(200)
        self.end_headers()


http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

#!/usr/bin/python3
"""A small driver for headless Chromium over the DevTools protocol.

    b = Browser(port)         # starts chromium (Debian's) on a free port
    b.go(url)                 # navigates and waits for body[data-ready=1]
    b.js(expression)          # evaluates, returns the value
    b.wait(expression)        # polls until truthy (10 s), returns it
    b.shot(path)              # saves a PNG of the page
    b.close()
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket  # python3-websocket


class Browser:
    def __init__(self, port):
        self.profile = tempfile.mkdtemp(prefix="ocib-chromium.")
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--window-size=1280,900", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=%d" % port,
             "--user-data-dir=" + self.profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its scratch files go with the profile, removed at close.
            env=dict(os.environ, TMPDIR=self.profile))
        pages = None
        for _ in range(200):
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/json/list" % port, timeout=2) as r:
                    pages = [p for p in json.load(r) if p["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if not pages:
            self.close()
            raise RuntimeError("chromium did not start")
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=30,
            suppress_origin=True)
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method,
                                 "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expression, timeout=10):
        end = time.time() + timeout
        value = None
        while time.time() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        return value

    def go(self, url):
        # Cleared first: a change of the hash alone keeps the document.
        self.js("document.body && (document.body.dataset.ready = '')")
        self.call("Page.navigate", url=url)
        time.sleep(0.2)
        return self.wait("document.body && document.body.dataset.ready === '1'")

    def shot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return os.path.getsize(path)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

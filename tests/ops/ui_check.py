#!/usr/bin/python3
"""The web catalog in a real browser (run by tests/ops/ui_test.sh).

Environment: REG, AUTH_REG (host:port), APP_DIGEST, MULTI_DIGEST,
HISTORY (JSON: created_by of the app image, newest first), SHOTS (a
directory for the screenshots), CDP_PORT. Prints "ok: ..." / "FAIL: ..."
lines and the screenshots' paths.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Browser  # noqa: E402

REG = os.environ["REG"]
AUTH_REG = os.environ["AUTH_REG"]
APP = os.environ["APP_DIGEST"]
MULTI = os.environ["MULTI_DIGEST"]
HISTORY = json.loads(os.environ["HISTORY"])
SHOTS = os.environ["SHOTS"]
os.makedirs(SHOTS, exist_ok=True)
failed = 0


def check(ok, what):
    global failed
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failed += 1


def shot(b, name):
    path = os.path.join(SHOTS, name + ".png")
    size = b.shot(path)
    check(size > 5000, "screenshot %s (%d bytes)" % (path, size))


def texts(b, selector):
    return b.js("[...document.querySelectorAll(%s)].map(e => e.textContent)"
                % json.dumps(selector))


b = Browser(int(os.environ["CDP_PORT"]))
try:
    # --- repositories, pagination, search ---
    b.go("http://%s/ui/" % REG)
    names = texts(b, "#repos a.repo")
    check(len(names) == 50, "the first page lists 50 repositories (%d)" % len(names))
    check(b.js("!document.getElementById('more').hidden"), "a More button for the rest")
    shot(b, "repositories")
    b.js("document.getElementById('more').click()")
    n = b.wait("document.querySelectorAll('#repos a.repo').length >= 100 && "
               "document.querySelectorAll('#repos a.repo').length")
    check(n and n >= 100, "More loads the next page (%s listed)" % n)
    b.js("const s = document.getElementById('search'); s.value = 'team/'; "
         "s.dispatchEvent(new Event('input'))")
    found = b.wait("(() => { const t = [...document.querySelectorAll('#repos a.repo')]"
                   ".map(e => e.textContent); return t.length && t.every(x => x.includes('team/')) && t; })()")
    check(found == ["team/app", "team/multi", "team/odd"], "search 'team/' finds team/app, team/multi and team/odd: %s" % found)
    shot(b, "search")

    # --- a repository ---
    b.go("http://%s/ui/#/r/team%%2Fapp" % REG)
    check(b.js("document.getElementById('repo-name').textContent") == "team/app", "repository page names it")
    rows = b.js("[...document.querySelectorAll('#tags tbody tr')].map(r => [...r.cells].map(c => c.textContent))")
    check(len(rows) == 1 and rows[0][0] == "v1" and rows[0][1] == APP[7:19],
          "its tag v1 with the digest: %s" % rows)
    check(rows and rows[0][2].endswith("B") and rows[0][3] == "linux/amd64" and "ago" in rows[0][4],
          "size, platform and push time shown: %s" % rows)
    pull = b.js("document.getElementById('pull').value")
    check(pull == "docker pull %s/team/app:v1" % REG, "a copyable pull line: %s" % pull)
    shot(b, "repository")

    # --- an image: config, layers, history, referrers; HTML stays text ---
    b.js("document.querySelector('#tags a.tag').click()")
    b.wait("document.body.dataset.ready === '1' && document.getElementById('image-name')")
    check(b.js("document.getElementById('image-name').textContent") == "team/app@" + APP,
          "clicking the tag opens the image")
    layers = b.js("document.querySelectorAll('#layers tbody tr').length")
    check(layers == 2, "2 layers listed (%s)" % layers)
    hist = b.js("[...document.querySelectorAll('#history tbody tr')].map(r => r.cells[1].textContent)")
    check(hist == HISTORY, "history rows as docker history lists them (newest first): %s" % hist)
    sizes = b.js("[...document.querySelectorAll('#history tbody tr')].map(r => r.cells[2].textContent)")
    check(sizes.count("0 B") == 1, "the empty-layer step shows 0 B: %s" % sizes)
    config = b.js("document.getElementById('config').textContent")
    check('["/bin/sh","-c","<img src=x onerror=window.__xss=1>"]' in config and "PATH=/bin" in config
          and "8080/tcp" in config, "config: entrypoint, env and exposed ports")
    label = texts(b, "#config dd.label")
    check("org.example.note=<b>bold</b>" in label, "a label with HTML shows as text: %s" % label)
    check(b.js("document.querySelectorAll('#config b, img, script:not([src])').length") == 0
          and b.js("window.__xss") is None, "no element made from the HTML in the image (no script ran)")
    refs = b.js("[...document.querySelectorAll('#referrers tbody tr')].map(r => r.cells[0].textContent)")
    check(refs == ["application/vnd.example.sig"], "the signature referrer with its artifact type: %s" % refs)
    shot(b, "image")

    b.go("http://%s/ui/#/i/team%%2Fmulti@%s" % (REG, MULTI))
    plats = b.js("[...document.querySelectorAll('#platforms tbody tr')].map(r => r.cells[0].textContent)")
    check(plats == ["linux/amd64", "linux/arm64"], "an index lists its platforms: %s" % plats)
    shot(b, "index")

    # --- with auth: a login, and only what the user may pull ---
    b.go("http://%s/ui/" % AUTH_REG)
    check(b.js("!!document.getElementById('login')"), "with auth on, the page asks to log in")
    shot(b, "login")
    b.js("document.getElementById('user').value = 'alice'; document.getElementById('password').value = 'wrong';"
         "document.getElementById('login-button').click()")
    err = b.wait("document.getElementById('login-error') && document.getElementById('login-error').textContent")
    check(bool(err), "a wrong password shows an error: %s" % err)
    b.js("document.getElementById('user').value = 'alice'; document.getElementById('password').value = 'alice-pw';"
         "document.getElementById('login-button').click()")
    names = b.wait("document.querySelectorAll('#repos a.repo').length && "
                   "[...document.querySelectorAll('#repos a.repo')].map(e => e.textContent)")
    check(names == ["team/app"], "alice sees only what she may pull: %s" % names)
    if names != ["team/app"]:
        print("    page: %r" % b.js("document.getElementById('main').innerText"))
    check(b.js("document.getElementById('who').textContent").startswith("signed in as alice"),
          "signed in as alice")
    shot(b, "signed-in")
finally:
    b.close()
print("%d failed in the browser" % failed)
sys.exit(1 if failed else 0)

#!/usr/bin/env python3
"""The include rules of docs/DESIGN.md, enforced (as Chromium's DEPS).

Each module under src/ may include its own headers, the project modules
listed for it, and the third-party libraries listed for it; the C++ and
POSIX headers are open to all. Test sources (*_test.cc) may also include
doctest and the shared test helpers. Prints each violation as
FILE:LINE: what, and exits 1 when there is any; with --list prints the
rules.

  include_layering.py SRC_DIR
  include_layering.py --self-test   (the check catches planted violations)
"""
import os
import re
import sys

# module -> (project modules it may use, third-party headers it may use)
RULES = {
    "util": ([], []),
    "metrics": (["util"], []),
    "store": (["util"], ["rocksdb/", "openssl/"]),
    "objstore": (["util", "store", "net"], ["httplib.h", "openssl/"]),
    "pgindex": (["util", "store/index.h"], ["libpq-fe.h"]),
    "oci": (["util", "store/digest.h"], ["nlohmann/"]),
    "net": (["util"], ["httplib.h", "openssl/"]),
    "client": (["util", "store", "oci", "net"], ["httplib.h", "nlohmann/", "openssl/"]),
    "auth": (["util"], ["nlohmann/", "openssl/", "crypt.h"]),
    "gc": (["util", "store", "oci", "auth/acl.h"], []),
    "registry": (["util", "store", "oci", "net", "client", "auth", "gc", "metrics", "objstore", "pgindex"], ["nlohmann/", "openssl/"]),
    "image": (["util", "store", "oci", "client"], ["nlohmann/", "openssl/", "zlib.h", "zstd.h", "lzma.h", "bzlib.h"]),
    "build": (["util", "store", "oci", "client", "image", "gc"], ["nlohmann/", "openssl/"]),
    "ocibuild": (["util", "store", "oci", "client", "image", "build", "gc"], ["nlohmann/"]),
}
THIRD_PARTY = ["crypt.h", "libpq-fe.h", "rocksdb/", "openssl/", "nlohmann/", "httplib.h", "zlib.h", "zstd.h", "lzma.h", "bzlib.h", "doctest/"]
TEST_ONLY = ["doctest/"]
TEST_HELPERS = ["temp_dir.h", "registry_process.h", "store_fixture.h"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def check(src):
    bad = []
    for module in sorted(os.listdir(src)):
        mdir = os.path.join(src, module)
        if not os.path.isdir(mdir):
            continue
        if module not in RULES:
            bad.append("%s: a module with no include rules (add it to tests/include_layering.py)" % mdir)
            continue
        allowed_mods, allowed_libs = RULES[module]
        for root, _, files in os.walk(mdir):
            for f in sorted(files):
                if not f.endswith((".h", ".cc")):
                    continue
                path = os.path.join(root, f)
                is_test = f.endswith("_test.cc")
                for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    kind, inc = m.groups()
                    lib = next((t for t in THIRD_PARTY if inc == t or inc.startswith(t)), None)
                    if lib:
                        if lib in allowed_libs or (is_test and lib in TEST_ONLY):
                            continue
                        bad.append("%s:%d: %s may not include <%s>" % (path, n, module, inc))
                        continue
                    if kind == "<":
                        continue  # the C++ and POSIX headers
                    if is_test and inc in TEST_HELPERS:
                        continue
                    top = inc.split("/", 1)[0]
                    if top == module or top in allowed_mods or inc in allowed_mods:
                        continue
                    bad.append('%s:%d: %s may not include "%s"' % (path, n, module, inc))
    return bad


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        def put(rel, text):
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            open(os.path.join(d, rel), "w").write(text)
        put("store/ok.cc", '#include "store/keys.h"\n#include "util/status.h"\n#include <rocksdb/db.h>\n#include <vector>\n')
        put("store/ok_test.cc", '#include <doctest/doctest.h>\n#include "temp_dir.h"\n')
        if check(d):
            print("self-test: a clean tree was flagged: %s" % check(d))
            return 1
        put("store/bad.cc", '#include <httplib.h>\n')
        put("build/bad.cc", '#include "registry/config.h"\n')
        put("registry/bad.h", '  #  include "build/builder.h"\n')
        put("oci/bad.cc", '#include "store/blob_store.h"\n#include <doctest/doctest.h>\n')
        found = check(d)
        want = ["store/bad.cc:1", "build/bad.cc:1", "registry/bad.h:1", "oci/bad.cc:1", "oci/bad.cc:2"]
        missing = [w for w in want if not any(w in f for f in found)]
        if missing or len(found) != len(want):
            print("self-test: expected %s, got %s" % (want, found))
            return 1
    print("self-test: 5 planted violations caught, a clean tree passes")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        sys.exit(self_test())
    if len(sys.argv) > 1 and sys.argv[1] == "--list":
        for m, (mods, libs) in RULES.items():
            print("%-9s modules: %-40s libraries: %s" % (m, " ".join(mods) or "-", " ".join(libs) or "-"))
        sys.exit(0)
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    problems = check(sys.argv[1])
    for p in problems:
        print(p)
    print("%d include rule violations" % len(problems))
    sys.exit(1 if problems else 0)

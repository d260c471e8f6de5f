#!/usr/bin/env python3
"""Summarises an image saved as a Docker archive (docker save / ocibuild
save) and compares two summaries.

  imgfs.py summarize ARCHIVE.tar OUT.json
  imgfs.py compare OURS.json REFERENCE.json [IGNORE_FILE]

A summary holds the image config fields a build decides (Env, Cmd,
Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal,
Healthcheck, OnBuild, Shell, os, architecture, author), the history
(created_by and empty_layer), the number of layers and the flattened root filesystem: the layers applied in
order with their whiteouts, one record per path with its type, mode
(permission bits with setuid/setgid/sticky), uid, gid, size, content hash,
symlink target, hardlink group and xattrs. Modification times are left
out. The ignore file lists one shell-style pattern per line: paths whose
records are not compared ("# comment" lines and blank lines skipped).
compare prints one line per difference and exits 1 when there is any.
"""
import fnmatch
import hashlib
import json
import sys
import tarfile

CONFIG_FIELDS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts",
                 "Volumes", "Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell"]
TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
         tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "file", tarfile.CHRTYPE: "char",
         tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def norm(name):
    name = name.lstrip("./")
    while name.startswith("/"):
        name = name[1:]
    name = name.rstrip("/")
    return "/" + name if name else "/"


def apply_layer(fs, groups, tf):
    """Applies one layer tar to fs (path -> record)."""
    members = tf.getmembers()
    # Whiteouts first: they remove what lower layers had, never this layer's.
    for m in members:
        path = norm(m.name)
        parent, _, base = path.rpartition("/")
        parent = parent or "/"
        if base == ".wh..wh..opq":
            prefix = parent.rstrip("/") + "/"
            for p in [p for p in fs if p.startswith(prefix)]:
                drop(fs, groups, p)
        elif base.startswith(".wh."):
            victim = (parent.rstrip("/") + "/" + base[4:])
            for p in [p for p in fs if p == victim or p.startswith(victim + "/")]:
                drop(fs, groups, p)
    for m in members:
        path = norm(m.name)
        base = path.rpartition("/")[2]
        if base.startswith(".wh."):
            continue
        if path in fs:
            old = fs[path]
            if m.isdir() and old["type"] == "dir":
                pass  # a directory entry over a directory only changes its metadata
            else:
                drop(fs, groups, path)
                if old["type"] == "dir" and not m.isdir():
                    for p in [p for p in fs if p.startswith(path + "/")]:
                        drop(fs, groups, p)
        rec = {"type": TYPES.get(m.type, "other:%r" % m.type), "mode": "%04o" % (m.mode & 0o7777),
               "uid": m.uid, "gid": m.gid}
        xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
                  if k.startswith("SCHILY.xattr.")}
        if xattrs:
            rec["xattrs"] = dict(sorted(xattrs.items()))
        if m.issym():
            rec["target"] = m.linkname
        elif m.islnk():
            src = norm(m.linkname)
            if src in fs:
                base_rec = fs[src]
                for k in ("size", "sha256"):
                    if k in base_rec:
                        rec[k] = base_rec[k]
                g = base_rec.setdefault("_group", src)
                rec["_group"] = g
                groups.setdefault(g, set()).update({src, path})
        elif m.isfile():
            h = hashlib.sha256()
            f = tf.extractfile(m)
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
            rec["size"] = m.size
            rec["sha256"] = h.hexdigest()
        elif m.ischr() or m.isblk():
            rec["dev"] = "%d:%d" % (m.devmajor, m.devminor)
        fs[path] = rec


def drop(fs, groups, path):
    rec = fs.pop(path, None)
    if rec and "_group" in rec:
        groups.get(rec["_group"], set()).discard(path)


def summarize(archive, out):
    with tarfile.open(archive, "r:*") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        fs, groups = {}, {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer), mode="r:*") as tf:
                apply_layer(fs, groups, tf)
    for path, rec in fs.items():
        g = rec.pop("_group", None)
        if g is not None:
            members = sorted(p for p in groups.get(g, ()) if p in fs)
            if len(members) > 1:
                rec["links"] = members
    cfg = config.get("config") or {}
    summary = {
        "config": {k: cfg.get(k) for k in CONFIG_FIELDS if cfg.get(k) not in (None, {}, [], "")},
        "image": {k: config.get(k) for k in ("os", "architecture", "variant", "author") if config.get(k)},
        "history": [{"created_by": h.get("created_by", ""), "empty_layer": bool(h.get("empty_layer"))}
                    for h in config.get("history", [])],
        "layers": len(manifest["Layers"]),
        "files": dict(sorted(fs.items())),
    }
    with open(out, "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)


def compare(ours_path, ref_path, ignore_path=None):
    ours = json.load(open(ours_path))
    ref = json.load(open(ref_path))
    ignore = []
    if ignore_path:
        for line in open(ignore_path):
            line = line.strip()
            if line and not line.startswith("#"):
                ignore.append(line)
    skip = lambda p: any(fnmatch.fnmatchcase(p, pat) for pat in ignore)
    diffs = []
    for section in ("config", "image"):
        for k in sorted(set(ours[section]) | set(ref[section])):
            if ours[section].get(k) != ref[section].get(k):
                diffs.append("%s %s: ours %s, reference %s" % (
                    section, k, json.dumps(ours[section].get(k)), json.dumps(ref[section].get(k))))
    # History after the base's one entry (bases are imported, and docker
    # import and ocibuild import word that entry differently). BuildKit ends
    # the steps it ran with " # buildkit"; that mark is not compared.
    strip = lambda h: dict(h, created_by=h["created_by"].removesuffix(" # buildkit"))
    ha = [strip(h) for h in ours["history"][1:]]
    hb = [strip(h) for h in ref["history"][1:]]
    for i in range(max(len(ha), len(hb))):
        a = ha[i] if i < len(ha) else None
        b = hb[i] if i < len(hb) else None
        if a != b:
            diffs.append("history[%d]: ours %s, reference %s" % (i + 1, json.dumps(a), json.dumps(b)))
    if ours["layers"] != ref["layers"]:
        diffs.append("layers: ours %d, reference %d" % (ours["layers"], ref["layers"]))
    for p in sorted(set(ours["files"]) | set(ref["files"])):
        if skip(p):
            continue
        a, b = ours["files"].get(p), ref["files"].get(p)
        if a is None:
            diffs.append("%s: missing (reference has %s)" % (p, json.dumps(b, sort_keys=True)))
        elif b is None:
            diffs.append("%s: extra (%s)" % (p, json.dumps(a, sort_keys=True)))
        elif a != b:
            fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            diffs.append("%s: %s" % (p, ", ".join("%s ours %s ref %s" % (
                k, json.dumps(a.get(k)), json.dumps(b.get(k))) for k in fields)))
    for d in diffs:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "summarize":
        summarize(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

#!/usr/bin/python3
"""The oracle: what Mercurial itself reads from a repository, in a binary
file the C++ differential test parses.

Usage: hg_dump.py [--check N] REPO OUTFILE
       hg_dump.py [--check N] --all FIXTURES   (every repo in FIXTURES/repos.txt,
                                                 written to FIXTURES/<name>.dump)

Everything comes from Mercurial's Python API (the same code `hg` runs), and
--check ties it to the command line: for N changesets per repository the
dumped manifest text is compared with `hg manifest --debug -r REV` and the
dumped contents with `hg cat -r REV PATH...`, and the script fails if they
differ.

Format (all integers big-endian; "bytes" is a u32 length then the bytes;
"node" is 20 raw bytes; "opt" is a u8 0/1 then, if 1, the value):

  magic      b"HGDUMP1\\n"
  u32        number of changesets; then for each, in revision order:
    node       changeset node
    node       manifest node
    bytes      exactly what `hg manifest --debug -r REV` prints
    u32        number of files; then for each, in manifest order:
      bytes      path
      node       file node
      u8         flag: 0, 'x' or 'l'
      u8         1 if the revision is censored (content then empty)
      bytes      content (fctx.data(): metadata removed)
      u64        fctx.size() (hg's own answer; it counts a "\\1\\n" header)
      opt        filelog copy source (filelog.renamed()): bytes path, node
      opt        changeset-level copy (fctx.renamed()): bytes path, node
  u32        number of filelogs; then for each, sorted by path:
    bytes      path
    u32        number of revisions; then for each, in revision order:
      node       node
      i32        linkrev
      node       p1
      node       p2
      u8         1 if censored (contents then empty)
      bytes      raw text (with its metadata block; rawdata())
      bytes      content (read(): metadata removed)
      opt        copy source (filelog.renamed()): bytes path, node
  u32        number of lookups; then for each:
    bytes      spec, as given to `hg -r`
    i32        revision; -2 = unknown revision, -3 = ambiguous prefix
"""

import argparse
import os
import random
import struct
import subprocess
import sys

from mercurial import error, hg, scmutil, ui as uimod
from mercurial.node import hex

MAGIC = b"HGDUMP1\n"
UNKNOWN = -2
AMBIGUOUS = -3


class Writer:
    def __init__(self):
        self.parts = []

    def u8(self, v):
        self.parts.append(struct.pack(">B", v))

    def u32(self, v):
        self.parts.append(struct.pack(">I", v))

    def i32(self, v):
        self.parts.append(struct.pack(">i", v))

    def u64(self, v):
        self.parts.append(struct.pack(">Q", v))

    def raw(self, b):
        self.parts.append(b)

    def bytes(self, b):
        self.u32(len(b))
        self.parts.append(b)

    def node(self, n):
        assert len(n) == 20
        self.parts.append(n)

    def copy(self, c):
        if c:
            self.u8(1)
            self.bytes(c[0])
            self.node(c[1])
        else:
            self.u8(0)

    def data(self):
        return b"".join(self.parts)


MODE = {b"l": b"644", b"x": b"755", b"": b"644"}
CHAR = {b"l": b"@", b"x": b"*", b"": b""}


def manifest_debug_text(ctx):
    """What commands.manifest prints with --debug (mercurial/commands.py)."""
    mf = ctx.manifest()
    out = []
    for f in ctx:
        fl = mf.flags(f)
        out.append(b"%s %s %1s %s\n" % (hex(mf[f]), MODE[fl], CHAR[fl], f))
    return b"".join(out)


def read_or_censored(fctx):
    # filectx.data() turns CensoredNodeError into an Abort (censor.policy).
    if fctx.filelog().iscensored(fctx.filerev()):
        return True, b""
    return False, fctx.data()


def dump_changesets(repo, w):
    cl = repo.changelog
    w.u32(len(cl))
    paths = set()
    for rev in cl:
        ctx = repo[rev]
        w.node(ctx.node())
        w.node(ctx.manifestnode())
        w.bytes(manifest_debug_text(ctx))
        mf = ctx.manifest()
        files = list(ctx)
        w.u32(len(files))
        for f in files:
            paths.add(f)
            fctx = ctx[f]
            flag = mf.flags(f)
            w.bytes(f)
            w.node(fctx.filenode())
            w.u8(ord(flag) if flag else 0)
            censored, data = read_or_censored(fctx)
            w.u8(1 if censored else 0)
            w.bytes(data)
            w.u64(fctx.size())
            w.copy(fctx.filelog().renamed(fctx.filenode()))
            w.copy(None if censored else fctx.renamed())
    return paths


def dump_filelogs(repo, paths, w):
    w.u32(len(paths))
    for path in sorted(paths):
        fl = repo.file(path)
        w.bytes(path)
        w.u32(len(fl))
        for rev in fl:
            node = fl.node(rev)
            p1, p2 = fl.parents(node)
            w.node(node)
            w.i32(fl.linkrev(rev))
            w.node(p1)
            w.node(p2)
            censored = fl.iscensored(rev)
            w.u8(1 if censored else 0)
            if censored:
                w.bytes(b"")
                w.bytes(b"")
                w.u8(0)
                continue
            w.bytes(fl.rawdata(node))
            w.bytes(fl.read(node))
            w.copy(fl.renamed(node))


def lookup_specs(repo):
    """Revision specs of the forms hgbridge's lookup accepts, none of them a
    tag, branch or bookmark name (hg would resolve those first)."""
    cl = repo.changelog
    n = len(cl)
    rng = random.Random(hex(cl.node(n - 1)) if n else b"empty")
    specs = [b"tip", b"null", b"0", b"-1", b"-0", b"00", b"01", b"000", b"0000000",
             b"%d" % n, b"%d" % (n + 1), b"-%d" % n, b"-%d" % (n + 1), b"+1",
             b"zz", b"g00d", b"deadbeef" * 5, b"0" * 40, b"0" * 39, b"0" * 41, b""]
    if n > 1:
        specs += [b"1", b"%d" % (n - 1), b"-2", b"-%d" % (n - 1)]
    revs = sorted(set(rng.sample(range(n), min(n, 12)))) if n else []
    for r in revs:
        h = hex(cl.node(r))
        specs += [b"%d" % r, h, h.upper(), h[:12]]
        specs += [h[:k] for k in range(1, 8)]
    names = set(repo.tags()) | set(repo.branchmap()) | set(repo._bookmarks)
    names.discard(b"tip")  # a tag to hg, a keyword to hgbridge: same answer
    seen = set()
    out = []
    for s in specs:
        if s in seen or s in names:
            continue
        seen.add(s)
        out.append(s)
    return out


def resolve(repo, spec):
    try:
        ctx = scmutil.revsymbol(repo, spec)
    except error.AmbiguousPrefixLookupError:
        return AMBIGUOUS
    except (error.RepoLookupError, error.LookupError):
        return UNKNOWN
    rev = ctx.rev()
    return rev  # None for the working directory: the caller skips it


def dump_lookups(repo, w):
    results = []
    for spec in lookup_specs(repo):
        if spec == b"":
            results.append((spec, UNKNOWN))  # hg -r '' is an error too
            continue
        rev = resolve(repo, spec)
        if rev is not None:
            results.append((spec, rev))
    w.u32(len(results))
    for spec, rev in results:
        w.bytes(spec)
        w.i32(rev)


def dump(repo_path):
    ui = uimod.ui.load()
    ui.setconfig(b"ui", b"quiet", b"true")
    repo = hg.repository(ui, os.fsencode(repo_path))
    w = Writer()
    w.raw(MAGIC)
    paths = dump_changesets(repo, w)
    dump_filelogs(repo, paths, w)
    dump_lookups(repo, w)
    return repo, w.data()


# -- tie the oracle to the command line -------------------------------------


def hg_cli(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HG")}
    env.update(HGPLAIN="1", HGRCPATH="", HGENCODING="utf-8")
    return subprocess.run(
        [b"hg"] + args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def spot_check(repo, repo_path, count):
    cl = repo.changelog
    if not len(cl):
        return
    rng = random.Random(hex(cl.node(len(cl) - 1)))
    revs = sorted(set([len(cl) - 1] + rng.sample(range(len(cl)), min(len(cl), count - 1))))
    for rev in revs[:count]:
        ctx = repo[rev]
        got = hg_cli([b"manifest", b"--debug", b"-r", b"%d" % rev], repo_path)
        want = manifest_debug_text(ctx)
        if got.returncode != 0 or got.stdout != want:
            raise SystemExit(
                "oracle mismatch: %s: hg manifest --debug -r %d differs from the API"
                % (repo_path, rev)
            )
        files = [f for f in ctx if not ctx[f].filelog().iscensored(ctx[f].filerev())]
        picked = sorted(rng.sample(files, min(len(files), 6)))
        if not picked:
            continue
        got = hg_cli([b"cat", b"-r", b"%d" % rev] + picked, repo_path)
        want = b"".join(ctx[f].data() for f in picked)
        if got.returncode != 0 or got.stdout != want:
            raise SystemExit(
                "oracle mismatch: %s: hg cat -r %d %r differs from the API (rc %d)"
                % (repo_path, rev, picked, got.returncode)
            )


def dump_one(repo_path, out_path, check):
    repo, data = dump(repo_path)
    if check:
        spot_check(repo, repo_path, check)
    with open(out_path, "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", type=int, default=2, help="changesets per repo to check with hg")
    ap.add_argument("--all", metavar="FIXTURES")
    ap.add_argument("repo", nargs="?")
    ap.add_argument("out", nargs="?")
    args = ap.parse_args()
    if args.all:
        with open(os.path.join(args.all, "repos.txt")) as f:
            names = f.read().split()
        jobs = []
        rc = 0
        for name in names:
            pid = os.fork()
            if pid == 0:
                # One process per repository: repositories do not share state
                # and two cores halve the time.
                try:
                    repo = os.path.join(args.all, name)
                    dump_one(repo, os.path.join(args.all, name + ".dump"), args.check)
                except BaseException as e:  # noqa: any failure fails the child
                    print("hg_dump: %s: %s" % (name, e), file=sys.stderr)
                    os._exit(1)
                os._exit(0)
            jobs.append(pid)
            if len(jobs) >= (os.cpu_count() or 2):
                _, status = os.waitpid(jobs.pop(0), 0)
                rc |= status
        for pid in jobs:
            _, status = os.waitpid(pid, 0)
            rc |= status
        return 1 if rc else 0
    if not args.repo or not args.out:
        ap.error("REPO and OUTFILE, or --all FIXTURES")
    dump_one(args.repo, args.out, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())

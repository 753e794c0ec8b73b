#!/usr/bin/python3
"""Differential status test: the mount against a normal checkout.

Makes a repository with the real hg (nested directories, several revisions
on two branches, an executable, symlinks, a .hgignore with glob and regexp
lines), mounts a revision of it ("A") and makes a normal checkout of the same
revision with `hg clone` ("B"). Then applies the same seeded random sequence
of operations to both trees: edits, appends, truncations, creations,
deletions and renames of files and directories, chmod, symlink <-> file,
file <-> directory, edits that restore the original bytes, hg
add/remove/forget/copy/rename/addremove/revert (-r)/commit (--amend)/
update (-C, --check, --merge, --tool :local/:other, after hg remove of a file
the target changes: revisions 4-7 of the fixture change most files)/merge and
its commit/resolve (--all --tool, --mark)/rebase (then --abort)/shelve,
update and unshelve (then --abort)/purge (now and then without the
daemon in A: hg's walk and the extension's map reading p1's manifest), .hgignore edits (valid and sometimes not), ignored and unknown files
in new and in ignored directories, nested repositories. Every operation's results (errno of each system call; exit
code, stdout and stderr of each hg command) must be the same in both trees.

After every step `hg status -A -C` must print the same bytes in A (where
the mount's .hg/hgrc enables the hgvfs extension; it must have used the
daemon's answer) and in B, and `hgvfs status -A -C` in A must print them
too, and the trees must be equal (every name, kind, mode, content and
symlink target; .hg excluded). Every few steps also: hg in A without the
daemon (`--config hgvfs.socket=`), stock hg refusing A (`--config
extensions.hgvfs=!` must abort on the hgvfs-dirstate requirement), `hg diff --git`, `hg resolve --list`, the
parents, and one variant of status (from a subdirectory, with a
pattern, with -I, against another revision, -0, -T json) in both trees and
through `hgvfs status`.

On a mismatch prints the seed, the step, the operations so far and both
outputs, goes on with the next seed, and exits 1.

Usage: /usr/bin/python3 status_differential.py /path/to/hgvfs [SEEDS [STEPS]]

Environment:
  HGVFS_STATUS_SEEDS=N        number of seeds (seeds 1..N), default 3
  HGVFS_STATUS_SEED=S[,S...]  run exactly these seeds (to reproduce one)
  HGVFS_STATUS_STEPS=N        steps per seed, default 40
  HGVFS_STATUS_NO_MOUNT=1     A is a second `hg clone`, `hgvfs status` is
                              skipped (to develop the harness without a mount)
  HGVFS_STATUS_PERTURB=STEP   after STEP, change B behind the harness's back:
                              the comparison must then fail
  HGVFS_STATUS_SMALL=1        with NO_MOUNT: A's dirstate is in the mount's
                              format and the extension runs there without a
                              daemon (its map answers from p1's manifest)
  HGVFS_STATUS_NO_HGVFS_STATUS=1  skip `hgvfs status`
  HGVFS_STATUS_SKIP=V,...     skip `hgvfs status` in these variants (subdir,
                              subdir-pattern, include, rev, flags, json, paths)
  HGVFS_STATUS_SKIP_OPS=OP,...  never run these operations (the op_ names
                              without op_: nested_repo, hg_update, ...)
  HGVFS_STATUS_KEEP=1         keep the temporary directory (after unmounting)
  HGVFS_STATUS_VERBOSE=1      print each operation as it runs
"""

import atexit
import collections
import difflib
import errno
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

from hg_env import HG_ENV

HG = '/usr/bin/hg'
TIMEOUT = 120
CHECK_EVERY = 5


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def flag(name):
    return os.environ.get(name, '') not in ('', '0')


BASE_ENV = dict(HG_ENV)


class Mismatch(Exception):
    pass


def start(cmd, cwd, env=None):
    return subprocess.Popen(cmd, cwd=cwd, env=env or BASE_ENV, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return 'timeout', out, err
    return proc.returncode, out, err


def run(cmd, cwd, env=None):
    return finish(start(cmd, cwd, env))


def run_all(jobs):
    """Runs (cmd, cwd) jobs concurrently; returns their results in order."""
    procs = [start(cmd, cwd) for cmd, cwd in jobs]
    return [finish(p) for p in procs]


def must(cmd, cwd, env=None):
    rc, out, err = run(cmd, cwd, env)
    if rc != 0:
        raise RuntimeError('%s failed (%s): %s%s' % (' '.join(map(str, cmd)), rc,
                                                     out.decode(errors='replace'),
                                                     err.decode(errors='replace')))
    return out


def write(path, data, mode=None):
    with open(path, 'wb') as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


# --- the template repository ----------------------------------------------

HGIGNORE = b'''syntax: glob
*.o
build/
*.tmp
syntax: regexp
^out/
\\.bak$
(^|/)cache-[0-9]+$
'''


def make_template(repo):
    """Returns the revisions as {name: node}; the working copy is left at
    `start`, the tip of the default branch."""
    must([HG, 'init', repo], '/')
    j = lambda p: os.path.join(repo, p)
    hg = lambda *a: must([HG] + list(a), repo)
    node = lambda: hg('log', '-r', '.', '-T', '{node}').decode()
    revs = {}
    for d in ('src/util', 'docs/guide/deep/er', 'bin', 'lib', 'empty-ish'):
        os.makedirs(j(d), exist_ok=True)
    write(j('README'), b'hello\n')
    write(j('Makefile'), b'all:\n\tcc -o main src/main.c\n')
    write(j('src/main.c'), b'int main(void) { return 0; }\n')
    write(j('src/util/helper.c'), b'int helper(void) { return 1; }\n' * 20)
    write(j('src/util/helper.h'), b'int helper(void);\n')
    write(j('docs/guide/intro.txt'), b'intro\n' * 5)
    write(j('docs/guide/deep/er/file.txt'), b'deep\n')
    write(j('bin/run.sh'), b'#!/bin/sh\necho run\n', 0o755)
    write(j('lib/sp ace.txt'), b'space\n')
    write(j(b'lib/caf\xc3\xa9'.decode('utf-8', 'surrogateescape')), b'utf-8 name\n')
    write(j(b'lib/lat\xe9'.decode('utf-8', 'surrogateescape')), b'latin-1 name\n')
    write(j('lib/empty'), b'')
    write(j('empty-ish/.keep'), b'')
    write(j('.hgignore'), HGIGNORE)
    os.symlink('src/main.c', j('link'))
    hg('commit', '-qA', '-d', '0 0', '-m', 'r0')
    revs['r0'] = node()

    write(j('src/main.c'), b'#include "util/helper.h"\nint main(void) { return helper(); }\n')
    write(j('docs/guide/intro.txt'), b'intro\n' * 6)
    write(j('src/util/extra.c'), b'extra\n')
    os.chmod(j('Makefile'), 0o755)
    os.symlink('../docs', j('src/docs-link'))
    hg('commit', '-qA', '-d', '0 0', '-m', 'r1')
    revs['r1'] = node()

    hg('branch', '-q', 'other')
    write(j('README'), b'hello from other\n')
    write(j('lib/other.txt'), b'other\n')
    hg('remove', '-q', 'lib/empty')
    hg('commit', '-qA', '-d', '0 0', '-m', 'r2 other')
    revs['other'] = node()

    hg('update', '-q', '-r', revs['r1'])
    hg('rename', '-q', 'src/util/extra.c', 'src/extra2.c')
    hg('remove', '-q', 'docs/guide/deep/er/file.txt')
    os.makedirs(j('docs/guide/deep/er'), exist_ok=True)
    write(j('docs/guide/deep/er/new.txt'), b'new\n')
    write(j('Makefile'), b'all:\n\tcc -o main src/main.c src/util/helper.c\n')
    os.chmod(j('bin/run.sh'), 0o644)
    os.unlink(j('link'))
    os.symlink('README', j('link'))
    hg('commit', '-qA', '-d', '0 0', '-m', 'r3')
    revs['start'] = node()

    # Descendants of `start` (revisions 4, 5, 6) that change most files, and
    # one more revision on `other` (7) that changes the same ones: an update
    # or a merge then meets the random edits and removals of the working copy
    # (local modified/removed against other changed/deleted).
    for i, rev in enumerate(CHAIN):
        for path, change in rev:
            p = j(path)
            if change == 'remove':
                hg('remove', '-q', path)
            elif change == 'link':
                os.unlink(p)
                os.symlink((b'docs', b'', b'src/util/helper.h')[i], p)
            elif change == 'chmod':
                os.chmod(p, os.stat(p).st_mode ^ 0o111)
            else:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                old = open(p, 'rb').read() if os.path.exists(p) else b''
                write(p, change(old, i))
        hg('commit', '-qA', '-d', '0 0', '-m', 'chain %d' % (i + 4))
        revs['chain%d' % (i + 4)] = node()
    hg('update', '-q', '-r', revs['other'])
    for path, change in OTHER_CHANGES:
        write(j(path), change(open(j(path), 'rb').read(), 9))
    hg('commit', '-qA', '-d', '0 0', '-m', 'other 7')
    revs['other7'] = node()
    hg('update', '-q', '-r', revs['start'])
    # A clone makes them public: the mounted repository must agree (amend).
    hg('phase', '-q', '--public', '-r', 'all()')
    return revs


def _line(old, i):
    """Changes one line in the middle (merges of nearby edits conflict)."""
    lines = old.split(b'\n')
    k = len(lines) // 2
    lines[k:k + 1] = [b'chain %d: %s' % (i, lines[k])]
    return b'\n'.join(lines)


def _top(old, i):
    return b'chain %d\n' % i + old


def _tail(old, i):
    return old + b'tail %d\n' % i


_EDITS = ['README', 'Makefile', 'src/main.c', 'src/util/helper.c', 'src/util/helper.h',
          'docs/guide/intro.txt', 'lib/sp ace.txt', 'lib/empty', 'empty-ish/.keep',
          'docs/guide/deep/er/new.txt',
          b'lib/caf\xc3\xa9'.decode('utf-8', 'surrogateescape'),
          b'lib/lat\xe9'.decode('utf-8', 'surrogateescape')]
CHAIN = [
    [(p, _line) for p in _EDITS] + [('bin/run.sh', 'chmod'), ('link', 'link'),
                                    ('docs/guide/deep/er/r4.txt', _tail)],
    [(p, _top) for p in _EDITS[:6]] + [('lib/sp ace.txt', 'remove'), ('pkg/mod.c', _tail),
                                       ('src/extra2.c', _line), ('Makefile', 'chmod')],
    [(p, _tail) for p in _EDITS if p != 'lib/sp ace.txt'] + [
        ('link', 'link'), ('docs/guide/deep/er/r4.txt', 'remove'), ('pkg/mod.c', _line)],
]
# Paths the chain changes: the ones a removal before an update is about.
CHAIN_PATHS = sorted({os.fsencode(p) for rev in CHAIN for p, _ in rev})
OTHER_CHANGES = [(p, _line) for p in ('src/main.c', 'src/util/helper.c', 'docs/guide/intro.txt',
                                      'Makefile', 'README')]


# --- trees --------------------------------------------------------------------

def walk(root):
    """{relpath bytes: (kind, mode, content or target)}, directories
    included, .hg at the root excluded and nested ones not descended."""
    out = {}
    broot = os.fsencode(root)

    def rec(rel):
        path = broot + b'/' + rel if rel else broot
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            name = entry.name
            r = rel + b'/' + name if rel else name
            if name == b'.hg':
                if rel:  # a nested repository: its .hg is not compared
                    out[r] = ('nested .hg', 0, None)
                continue
            st = os.lstat(entry.path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                out[r] = ('dir', mode, None)
                rec(r)
            elif stat.S_ISLNK(st.st_mode):
                out[r] = ('link', 0, os.readlink(entry.path))
            elif stat.S_ISREG(st.st_mode):
                with open(entry.path, 'rb') as f:
                    out[r] = ('file', mode, f.read())
            else:
                out[r] = ('other', mode, None)

    rec(b'')
    return out


def tree_diff(a, b):
    lines = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            def show(v):
                if v is None:
                    return 'absent'
                kind, mode, data = v
                if kind == 'file':
                    return 'file %o %d bytes %r' % (mode, len(data), data[:60])
                return '%s %o %r' % (kind, mode, data)
            lines.append('  %r: mount %s, checkout %s' % (p, show(a.get(p)), show(b.get(p))))
    return lines


# --- operations ---------------------------------------------------------------
#
# An operation is planned from the state of B (a walk and B's last status) with
# the seeded generator, as a list of primitive actions; the same actions are
# then applied to A and to B and their results must be equal.

def apply(root, actions, mount=False):
    broot = os.fsencode(root)
    results = []
    for act in actions:
        kind = act[0]
        if kind == 'hg':
            cmd = [HG] + list(act[1])
            if mount and len(act) > 2 and act[2]:
                cmd += ['--config', 'hgvfs.socket=']
            rc, out, err = run(cmd, root)
            results.append((rc, out.replace(broot, b'$ROOT'), err.replace(broot, b'$ROOT')))
            continue
        p = lambda rel: broot + b'/' + rel
        try:
            if kind == 'write':
                with open(p(act[1]), 'wb') as f:
                    f.write(act[2])
            elif kind == 'append':
                with open(p(act[1]), 'ab') as f:
                    f.write(act[2])
            elif kind == 'inplace':  # overwrite without truncating
                fd = os.open(p(act[1]), os.O_WRONLY)
                try:
                    os.pwrite(fd, act[3], act[2])
                finally:
                    os.close(fd)
            elif kind == 'truncate':
                os.truncate(p(act[1]), act[2])
            elif kind == 'unlink':
                os.unlink(p(act[1]))
            elif kind == 'rename':
                os.rename(p(act[1]), p(act[2]))
            elif kind == 'rmtree':
                shutil.rmtree(p(act[1]))
            elif kind == 'makedirs':
                os.makedirs(p(act[1]), exist_ok=True)
            elif kind == 'mkdir':
                os.mkdir(p(act[1]))
            elif kind == 'chmod':
                os.chmod(p(act[1]), act[2])
            elif kind == 'symlink':
                os.symlink(act[1], p(act[2]))
            elif kind == 'utime':
                os.utime(p(act[1]), act[2], follow_symlinks=False)
            else:
                raise ValueError(kind)
            results.append('ok')
        except OSError as e:
            results.append(errno.errorcode.get(e.errno, str(e.errno)))
    return results


def apply_both(a, b, actions):
    """apply() to both trees, concurrently when hg commands are involved."""
    if not any(act[0] == 'hg' for act in actions):
        return apply(a, actions, True), apply(b, actions)
    out = {}
    t = threading.Thread(target=lambda: out.update(a=apply(a, actions, True)))
    t.start()
    rb = apply(b, actions)
    t.join()
    return out['a'], rb


WORDS = [b'alpha', b'beta', b'gamma', b'delta', b'\t', b'{', b'}', b'x' * 30, b'\xe9\xff', b'\0']
BASENAMES = [b'a', b'b.txt', b'c.c', b'data.bin', b'x.o', b'y.tmp', b'z.bak', b'cache-1',
             b'cache-x', b'sp ace', b'caf\xc3\xa9', b'lat\xe9', b'.hidden', b'Makefile', b'new',
             b'README', b'n.log', b'q.swp', b'top1', b'k.dat', b'a.txt']
DIRNAMES = [b'src', b'lib', b'build', b'out', b'docs', b'deep', b'nest', b'd\xe9j\xe0',
            b'x.tmp', b'gen', b'tmp', b'cache-7', b'top']
GLOB_LINES = [b'*.log', b'gen/', b'**/nest/*.txt', b'[ab].txt', b'src/*.h', b'*.txt']
IGNORE_LINES = GLOB_LINES + [
    b'syntax: glob', b'syntax: regexp', b'glob:*.swp', b're:^tmp', b'relglob:*.dat',
    b'rootglob:top*', b'path:lib/sub', b'regexp:\\.c$', b'glob:lib', b'.hidden',
    b'^docs/guide$', b'deep/er', b'syntax: rootglob', b'syntax: relglob']


def content(rng):
    if rng.random() < 0.03:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(70000, 140000)))
    n = rng.randrange(0, 12)
    return b''.join(rng.choice(WORDS) + rng.choice([b' ', b'\n']) for _ in range(n))


def merge_state(root):
    """(p2 is set, a merge state exists) in a normal checkout."""
    dot_hg = os.path.join(root, '.hg')
    try:
        with open(os.path.join(dot_hg, 'dirstate'), 'rb') as f:
            head = f.read(12 + 64)
    except FileNotFoundError:
        head = b''
    # mercurial/dirstateutils/docket.py (v2: marker, then 32-byte parents)
    # and mercurial/pure/parsers.py (v1: the two 20-byte parents first).
    v2 = b'dirstate-v2\n'
    p2 = head[len(v2) + 32:len(v2) + 52] if head.startswith(v2) else head[20:40]
    merging = p2.strip(b'\0') != b''
    return merging, unresolved_files(os.path.join(dot_hg, 'merge', 'state2'))


def unresolved_files(path):
    """Whether a merge state lists unresolved files. Records as in
    mercurial/mergestate.py: type byte, big-endian length, then for file
    records (F, C, P) `path\0state\0...` with state u or pu unresolved."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return False
    i = 0
    while i + 5 <= len(data):
        kind, n = data[i:i + 1], int.from_bytes(data[i + 1:i + 5], 'big')
        fields = data[i + 5:i + 5 + n].split(b'\0')
        if kind in b'FCP' and len(fields) > 1 and fields[1] in (b'u', b'pu'):
            return True
        i += 5 + n
    return False


class State:
    """What the planner sees: B's tree, B's last status and merge state."""

    def __init__(self, tree, status, merging=False, mergestate=False):
        self.tree = tree
        self.status = status  # path -> status char
        self.merging = merging
        self.mergestate = mergestate
        self.files = [p for p, v in tree.items() if v[0] in ('file', 'link', 'nested .hg')]
        self.regular = [p for p, v in tree.items() if v[0] == 'file']
        self.links = [p for p, v in tree.items() if v[0] == 'link']
        self.dirs = [p for p, v in tree.items() if v[0] == 'dir']
        self.tracked = sorted(p for p, c in status.items() if c in 'MAC!')
        self.untracked = sorted(p for p, c in status.items() if c in '?I')


def pick(rng, items, fallback=None):
    return rng.choice(items) if items else fallback


def pick_file(rng, s, tracked_bias=0.7, regular=False):
    pool = s.regular if regular else s.files
    tracked = [p for p in pool if s.status.get(p) in ('M', 'A', 'C')]
    if tracked and rng.random() < tracked_bias:
        return rng.choice(tracked)
    return pick(rng, pool)


def new_path(rng, s, newdirs=None):
    """A path that does not exist yet, maybe in new directories."""
    for _ in range(50):
        parent = pick(rng, s.dirs + [b''] * 3, b'')
        if newdirs is None:
            newdirs = rng.random() < 0.3
        if newdirs:
            for _ in range(rng.randrange(1, 3)):
                parent = (parent + b'/' if parent else b'') + rng.choice(DIRNAMES)
        name = rng.choice(BASENAMES) + (b'' if rng.random() < 0.6 else b'%d' % rng.randrange(9))
        p = (parent + b'/' if parent else b'') + name
        if p == b'.hg' or p.startswith(b'.hg/'):
            continue
        if any((p + b'/').startswith(f + b'/') for f in s.files) or p in s.tree:
            continue
        return p
    return b'fresh%d' % rng.randrange(10 ** 6)


def parent_of(p):
    return p.rsplit(b'/', 1)[0] if b'/' in p else b''


def mk_parent(p):
    d = parent_of(p)
    return [('makedirs', d)] if d else []


def fsarg(p):
    return os.fsdecode(p)


def hgcmd(*args):
    return ('hg', [a if isinstance(a, str) else fsarg(a) for a in args])


def op_edit(rng, s, step):
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    return 'edit %r' % p, [('write', p, content(rng))]


def op_edit_same_size(rng, s, step):
    cands = [p for p in s.regular if s.tree[p][2]]
    p = pick(rng, cands)
    if p is None:
        return None
    data = s.tree[p][2]
    i = rng.randrange(len(data))
    new = bytes([data[i] ^ (1 + rng.randrange(255))])
    if rng.random() < 0.5:
        return 'edit same size %r at %d' % (p, i), [('inplace', p, i, new)]
    return 'rewrite same size %r at %d' % (p, i), [('write', p, data[:i] + new + data[i + 1:])]


def op_append(rng, s, step):
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    return 'append %r' % p, [('append', p, content(rng) or b'z')]


def op_truncate(rng, s, step):
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    n = rng.choice([0, rng.randrange(0, len(s.tree[p][2]) + 1), len(s.tree[p][2]) + 7])
    return 'truncate %r to %d' % (p, n), [('truncate', p, n)]


def op_touch(rng, s, step):
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    t = rng.choice([None, (1e9, 1e9), (2e9, 2e9)])
    return 'touch %r %s' % (p, t), [('utime', p, t)]


def op_edit_restore(rng, s, step):
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    orig = s.tree[p][2]
    other = content(rng)
    if other == orig:
        other += b'!'
    acts = [('write', p, other), ('write', p, orig)]
    if rng.random() < 0.3:
        mode = s.tree[p][1]
        acts = [('chmod', p, mode ^ 0o111)] + acts + [('chmod', p, mode)]
    return 'edit and restore %r' % p, acts


def op_create(rng, s, step):
    p = new_path(rng, s)
    return 'create %r' % p, mk_parent(p) + [('write', p, content(rng))]


def op_create_ignored(rng, s, step):
    choice = rng.randrange(4)
    if choice == 0:
        base = rng.choice([b'build', b'out', b'src/build', b'x.tmp', b'cache-3'])
        p = base + b'/' + rng.choice(BASENAMES)
        if rng.random() < 0.4:
            p = base + b'/' + rng.choice(DIRNAMES) + b'/' + rng.choice(BASENAMES)
    else:
        d = pick(rng, s.dirs + [b''], b'')
        p = (d + b'/' if d else b'') + rng.choice([b'f.o', b'g.bak', b'cache-42', b'h.tmp'])
    if any((p + b'/').startswith(f + b'/') for f in s.files):
        return None
    return 'create ignored %r' % p, mk_parent(p) + [('write', p, content(rng))]


def op_delete(rng, s, step):
    p = pick_file(rng, s, tracked_bias=0.6)
    if p is None:
        return None
    return 'delete %r' % p, [('unlink', p)]


def op_rename_file(rng, s, step):
    src = pick_file(rng, s)
    if src is None:
        return None
    if rng.random() < 0.3 and len(s.files) > 1:
        dst = rng.choice([f for f in s.files if f != src])
    else:
        dst = new_path(rng, s)
    return 'rename %r -> %r' % (src, dst), mk_parent(dst) + [('rename', src, dst)]


def op_rename_dir(rng, s, step):
    src = pick(rng, s.dirs)
    if src is None:
        return None
    for _ in range(20):
        parent = pick(rng, [d for d in s.dirs if not (d + b'/').startswith(src + b'/')] + [b''])
        dst = (parent + b'/' if parent else b'') + rng.choice(DIRNAMES) + \
            (b'' if rng.random() < 0.5 else b'%d' % rng.randrange(9))
        if dst not in s.tree and dst != b'.hg' and not (
                has_nested(s, src) and under_tracked(s, dst)):
            return 'rename dir %r -> %r' % (src, dst), [('rename', src, dst)]
    return None


def op_rmtree(rng, s, step):
    d = pick(rng, s.dirs)
    if d is None:
        return None
    return 'rm -rf %r' % d, [('rmtree', d)]


def op_chmod(rng, s, step):
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    mode = s.tree[p][1]
    new = mode & ~0o111 if mode & 0o100 else mode | 0o111
    return 'chmod %r %o' % (p, new), [('chmod', p, new)]


def op_symlink_swap(rng, s, step):
    if s.links and rng.random() < 0.5:
        p = rng.choice(s.links)
        target = s.tree[p][2]
        return 'symlink -> file %r' % p, [('unlink', p), ('write', p, target)]
    p = pick_file(rng, s, regular=True)
    if p is None:
        return None
    target = rng.choice([b'README', b'../README', b'nowhere', b'src', b'/etc/hostname',
                         s.tree[p][2][:20].replace(b'\0', b'') or b'x'])
    return 'file -> symlink %r to %r' % (p, target), [('unlink', p), ('symlink', target, p)]


def op_file_dir_swap(rng, s, step):
    if rng.random() < 0.5:
        p = pick_file(rng, s)
        if p is None:
            return None
        return 'file -> dir %r' % p, [('unlink', p), ('mkdir', p),
                                      ('write', p + b'/inner', b'inner\n')]
    d = pick(rng, s.dirs)
    if d is None:
        return None
    return 'dir -> file %r' % d, [('rmtree', d), ('write', d, b'was a dir\n')]


def op_mkdir(rng, s, step):
    p = new_path(rng, s)
    return 'mkdir %r' % p, [('makedirs', p)]


def under_tracked(s, p):
    # hg's answer for tracked files inside a nested repository depends on
    # its dirstate cache (it aborts when it must read them): avoid them.
    return any(f.startswith(p + b'/') for f in s.status)


def has_nested(s, d):
    return any(k.startswith(d + b'/') and v[0] == 'nested .hg' for k, v in s.tree.items())


def op_nested_repo(rng, s, step):
    p = new_path(rng, s)
    if under_tracked(s, p):
        return None
    return 'nested repository %r' % p, [('makedirs', p), hgcmd('init', p),
                                        ('write', p + b'/inside', b'inside\n')]


def op_hg_add(rng, s, step):
    if rng.random() < 0.2:
        return 'hg add', [hgcmd('add')]
    p = pick(rng, s.untracked) if rng.random() < 0.8 else pick(rng, s.files)
    if p is None:
        return None
    return 'hg add %r' % p, [hgcmd('add', p)]


def op_hg_remove(rng, s, step):
    p = pick(rng, s.tracked)
    if p is None:
        return None
    flags = rng.choice([[], ['-A'], ['-f']])
    return 'hg remove %s %r' % (flags, p), [hgcmd('remove', *flags, p)]


def op_hg_forget(rng, s, step):
    p = pick(rng, s.tracked)
    if p is None:
        return None
    return 'hg forget %r' % p, [hgcmd('forget', p)]


def op_hg_copy(rng, s, step):
    src = pick(rng, s.tracked)
    if src is None:
        return None
    dst = new_path(rng, s)
    if rng.random() < 0.3 and src in s.tree and s.tree[src][0] == 'file':
        return 'cp + hg copy -A %r %r' % (src, dst), mk_parent(dst) + [
            ('write', dst, s.tree[src][2]), hgcmd('copy', '-A', src, dst)]
    return 'hg copy %r %r' % (src, dst), [hgcmd('copy', src, dst)]


def op_hg_rename(rng, s, step):
    src = pick(rng, s.tracked)
    if src is None:
        return None
    dst = new_path(rng, s)
    return 'hg rename %r %r' % (src, dst), [hgcmd('rename', src, dst)]


def op_hg_addremove(rng, s, step):
    args = rng.choice([[], ['-s', '75'], ['-s', '100']])
    return 'hg addremove %s' % args, [hgcmd('addremove', *args)]


def op_hg_revert(rng, s, step):
    backup = [] if rng.random() < 0.5 else ['--no-backup']
    rev = ['-r', rng.choice(UPDATE_REVS)] if rng.random() < 0.4 else []
    if rng.random() < 0.4:
        return 'hg revert --all %s %s' % (rev, backup), [hgcmd('revert', '--all', *(rev + backup))]
    pool = s.tracked + [p for p, c in s.status.items() if c == 'R']
    p = pick(rng, pool + (CHAIN_PATHS if rev else []))
    if p is None:
        return None
    return 'hg revert %s %r %s' % (rev, p, backup), [hgcmd('revert', *(rev + backup), p)]


def op_hgignore(rng, s, step):
    cur = s.tree.get(b'.hgignore')
    lines = cur[2].split(b'\n')[:-1] if cur and cur[0] == 'file' else []
    r = rng.random()
    if r < 0.55 or not lines:
        i = rng.randrange(len(lines) + 1)
        line = rng.choice(IGNORE_LINES)
        syntax = ([b'syntax: regexp'] + [l for l in lines[:i] if l.startswith(b'syntax:')])[-1]
        if (b':' not in line and syntax == b'syntax: regexp' and line in GLOB_LINES
                and rng.random() < 0.95):
            line = b'glob:' + line  # mostly valid; sometimes hg must refuse it
        lines.insert(i, line)
    elif r < 0.9:
        del lines[rng.randrange(len(lines))]
    else:
        lines = HGIGNORE.split(b'\n')[:-1]
    return 'edit .hgignore: %r' % lines, [('write', b'.hgignore', b''.join(l + b'\n' for l in lines))]


def op_commit(rng, s, step):
    base = ['commit', '-d', '0 0', '-m', 'step %d' % step]
    r = rng.random()
    if r < 0.15:
        return 'hg commit -A', [hgcmd(*(base + ['-A']))]
    if r < 0.3 and s.tracked:
        files = rng.sample(s.tracked, min(len(s.tracked), rng.randrange(1, 3)))
        return 'hg commit %r' % files, [hgcmd(*(base + files))]
    return 'hg commit', [hgcmd(*base)]


def op_amend(rng, s, step):
    return 'hg commit --amend', [hgcmd('commit', '--amend', '-d', '0 0', '-m', 'amend %d' % step)]


UPDATE_REVS = ['0', '1', '2', '3', '4', '5', '6', '7', 'other', 'default', '.^', '.~2', 'tip',
               'p1()']
# Mostly descendants of `start` that change what the working copy may have
# changed: updates that carry local changes through a merge.
CARRY_REVS = ['4', '5', '6', '6', 'default', 'tip', '.^', '3']


def op_update(rng, s, step):
    rev = rng.choice(UPDATE_REVS)
    r = rng.random()
    if r < 0.2:
        return 'hg update -C %s' % rev, [hgcmd('update', '-C', '-r', rev)]
    if r < 0.3:
        return 'hg update', [hgcmd('update')]
    return 'hg update %s' % rev, [hgcmd('update', '-r', rev)]


def update_args(rng, rev=None, local_bias=0.5):
    """An update that merges local changes, or refuses them (--check).
    Without --merge, hg refuses one to a revision that is neither an
    ancestor nor a descendant (after a commit here: 4-6 are off the line)."""
    rev = rev or rng.choice(CARRY_REVS)
    r = rng.random()
    tool = ':local' if rng.random() < local_bias else ':other'
    if r < 0.3:
        return ['update', '-r', rev, '--tool', tool]
    if r < 0.6:
        return ['update', '--merge', '-r', rev, '--tool', tool]
    if r < 0.7:
        return ['update', '--check', '-r', rev]
    if r < 0.85:
        # No tool: HGMERGE=internal:fail leaves conflicts unresolved, and
        # the changed/deleted prompts take their non-interactive default.
        return ['update'] + rng.choice([[], ['-r', rev], ['--merge', '-r', rev]])
    return ['update'] + rng.choice([[], ['--merge']]) + [
        '-r', rev, '--tool', rng.choice([':merge', ':union', ':fail'])]


def op_update_tool(rng, s, step):
    args = update_args(rng)
    return 'hg %s' % ' '.join(args), [hgcmd(*args)]


def pick_chain_path(rng, s, codes):
    cands = [p for p in CHAIN_PATHS if s.status.get(p, '') in codes]
    if cands and rng.random() < 0.85:
        return rng.choice(cands)
    return pick(rng, [p for p in s.tracked if s.status[p] in codes])


def op_remove_update(rng, s, step):
    """hg remove of a file the target revision changes, then an update:
    local removed / other changed."""
    p = pick_chain_path(rng, s, 'C' if rng.random() < 0.7 else 'MA!')
    if p is None:
        return None
    flags = ['-f'] if s.status.get(p) != 'C' or rng.random() < 0.2 else []
    rev = rng.choice(['4', '5', '6', '6', 'default', 'tip', '.^'])
    merge = ['--merge'] if rng.random() < 0.5 else []
    r = rng.random()
    if r < 0.55:
        # :local keeps the removal: a file of p1 that hg status lists nowhere.
        args = ['update'] + merge + ['-r', rev, '--tool', ':local']
    elif r < 0.7:
        args = ['update'] + merge + ['-r', rev, '--tool', ':other']
    elif r < 0.85:
        # No tool: the "local removed / other changed" prompt takes its
        # non-interactive default.
        args = ['update'] + rng.choice([[], merge + ['-r', rev]])
    else:
        args = update_args(rng, rev)
    return 'hg remove %s %r; hg %s' % (flags, p, ' '.join(args)), [
        hgcmd('remove', *flags, p), hgcmd(*args)]


def op_edit_update(rng, s, step):
    """A local edit (or deletion) of a file the target changes or removes,
    then an update: local modified / other changed or deleted."""
    p = pick_chain_path(rng, s, 'MAC')
    if p is None or s.tree.get(p, ('',))[0] != 'file':
        return None
    if rng.random() < 0.2:
        first = ('unlink', p)
    else:
        first = ('append', p, b'local %d\n' % step)
    args = update_args(rng)
    return '%s %r; hg %s' % (first[0], p, ' '.join(args)), [first, hgcmd(*args)]


def op_update_clean(rng, s, step):
    rev = rng.choice(['.', '.', 'p2()', '3', '4', '5', '6', 'other'])
    args = ['update', '-C'] + (['-r', rev] if rng.random() < 0.7 else [])
    return 'hg %s' % ' '.join(args), [hgcmd(*args)]


def op_merge(rng, s, step):
    rev = rng.choice(['other', 'default', '1', '3', '5', '6', '7'])
    tool = rng.choice([':local', ':other', ':merge', ':union', ':fail', None])
    args = ['merge', '-r', rev] + (['--tool', tool] if tool else [])
    return 'hg %s' % ' '.join(args), [hgcmd(*args)]


def op_merge_commit(rng, s, step):
    """hg merge and its commit; local changes first committed (hg merge
    refuses them), often enough that merges happen."""
    rev = rng.choice(['other', '7', '6', '5', 'max(head() - ancestors(.))'])
    tool = rng.choice([':local', ':other', ':union'])
    first = []
    if rng.random() < 0.75:
        first = [hgcmd('commit', '-A', '-d', '0 0', '-m', 'before merge %d' % step)]
    return '%shg merge %s --tool %s; hg commit' % (
        'hg commit -A; ' if first else '', rev, tool), first + [
        hgcmd('merge', '-r', rev, '--tool', tool),
        hgcmd('commit', '-d', '0 0', '-m', 'merge %d' % step)]


def op_resolve(rng, s, step):
    r = rng.random()
    if r < 0.5:
        args = ['resolve', '--all', '--tool', rng.choice([':local', ':other'])]
    elif r < 0.7:
        args = ['resolve', '--mark', '--all']
    elif r < 0.8:
        p = pick(rng, s.tracked + [p for p, c in s.status.items() if c == 'R'])
        if p is None:
            return None
        args = ['resolve', rng.choice(['--mark', '--unmark']), p]
    elif r < 0.9:
        args = ['resolve', '--re-merge', '--all', '--tool', rng.choice([':merge', ':union'])]
    else:
        args = ['resolve', '--list']
    return 'hg %s' % ' '.join(map(str, args)), [hgcmd(*args)]


REBASE = ['--config', 'extensions.rebase=']


def op_rebase(rng, s, step):
    """A commit of the local changes rebased onto another head (hg's merge
    machinery updating the working copy, file by file or natively), then
    aborted if it stopped on a conflict."""
    rev = rng.choice(['other', '7', '5', '6', 'default'])
    tool = rng.choice([':local', ':other', ':merge'])
    return 'hg commit -A; hg rebase -r . -d %s --tool %s; hg rebase --abort' % (
        rev, tool), [
        hgcmd('commit', '-A', '-d', '0 0', '-m', 'to rebase %d' % step),
        hgcmd(*(REBASE + ['rebase', '-r', '.', '-d', rev, '--tool', tool])),
        hgcmd(*(REBASE + ['rebase', '--abort']))]


def op_shelve(rng, s, step):
    """Local changes shelved, an update, and the shelf back (unshelve
    merges it with hg's machinery), aborted if it conflicts."""
    rev = rng.choice(['.', '.^', 'other', '4', '6', 'tip'])
    tool = rng.choice([':local', ':other'])
    return 'hg shelve -A; hg update %s; hg unshelve --tool %s; hg unshelve --abort' % (
        rev, tool), [
        hgcmd('shelve', '-A', '-d', '0 0', '-n', 's%d' % step),
        hgcmd('update', '-r', rev),
        hgcmd('unshelve', '--tool', tool, '-n', 's%d' % step),
        hgcmd('unshelve', '--abort')]


def op_purge(rng, s, step):
    args = rng.choice([[], ['--all'], ['--files']])
    return 'hg purge %s' % args, [hgcmd('purge', '--no-confirm', *args)]


OPS = [
    (10, op_edit), (5, op_edit_same_size), (5, op_append), (3, op_truncate), (3, op_touch),
    (4, op_edit_restore), (8, op_create), (4, op_create_ignored), (5, op_delete),
    (4, op_rename_file), (2, op_rename_dir), (1, op_rmtree), (3, op_chmod),
    (2, op_symlink_swap), (1, op_file_dir_swap), (1, op_mkdir), (1, op_nested_repo),
    (4, op_hg_add),
    (3, op_hg_remove), (2, op_hg_forget), (3, op_hg_copy), (3, op_hg_rename),
    (1, op_hg_addremove), (3, op_hg_revert), (3, op_hgignore), (4, op_commit),
    (1, op_amend), (3, op_update), (2, op_merge), (1, op_purge),
    (6, op_update_tool), (14, op_remove_update), (4, op_edit_update), (2, op_update_clean),
    (4, op_merge_commit), (2, op_resolve), (2, op_rebase), (2, op_shelve),
]


# After `hg merge` (p2 set) or conflicts (a merge state): mostly what a user
# does next, so that merges are committed, resolved or cleaned often.
AFTER_MERGE = [(5, op_commit), (3, op_resolve), (2, op_update_clean)]
AFTER_CONFLICT = [(3, op_resolve), (1, op_commit), (1, op_update_clean), (1, op_hg_revert)]


def plan(rng, s, step, skip=()):
    ops = OPS
    if (s.merging or s.mergestate) and rng.random() < 0.5:
        ops = AFTER_MERGE if s.merging else AFTER_CONFLICT
    ops = [(w, op) for w, op in ops if op.__name__[3:] not in skip] or \
        [(w, op) for w, op in OPS if op.__name__[3:] not in skip]
    total = sum(w for w, _ in ops)
    for _ in range(100):
        x = rng.randrange(total)
        for w, op in ops:
            if x < w:
                break
            x -= w
        planned = op(rng, s, step)
        if planned:
            desc, actions = planned
            if any(a[0] == 'hg' for a in actions) and rng.random() < 0.2:
                # Now and then hg in the mount without the daemon: its own
                # walk, and the extension's dirstate map reading p1's
                # manifest.
                actions = [a + (True,) if a[0] == 'hg' else a for a in actions]
                desc += ' (hg in the mount without the daemon)'
            return desc, actions
    return 'nothing', []


# --- status -------------------------------------------------------------------

def parse_status(out):
    st = {}
    for line in out.split(b'\n'):
        if len(line) > 2 and line[1:2] == b' ' and line[:1] in b'MAR!?IC':
            st[line[2:]] = line[:1].decode()
    return st


def show_err(err):
    if not err:
        return '  (nothing)\n'
    return ''.join('  ! %s\n' % l for l in err.decode('latin-1').rstrip('\n').split('\n'))


def show(result):
    rc, out, err = result
    text = 'exit %s\n' % rc
    text += ''.join('  | %s\n' % l for l in out.decode('latin-1').split('\n'))
    return text + (show_err(err) if err else '')


def udiff(a, b, na, nb):
    return ''.join(difflib.unified_diff(
        a.decode('latin-1').splitlines(True), b.decode('latin-1').splitlines(True), na, nb))


class Seed:
    def __init__(self, h, seed):
        self.h = h
        self.seed = seed
        self.rng = random.Random(seed)
        self.log = []
        self.step = 0
        self.stats = collections.Counter()

    def fail(self, what, details):
        msg = ['', '=' * 72, 'MISMATCH seed %d step %d: %s' % (self.seed, self.step, what),
               'operations (seed %d):' % self.seed]
        msg += ['  %3d %s' % (i, d) for i, d in self.log]
        msg.append(details)
        msg.append('reproduce: HGVFS_STATUS_SEED=%d HGVFS_STATUS_STEPS=%d%s' % (
            self.seed, self.step, ' HGVFS_STATUS_NO_MOUNT=1' if self.h.no_mount else ''))
        raise Mismatch('\n'.join(msg))

    def compare(self, what, results, names):
        roots = [os.fsencode(self.h.a), os.fsencode(self.h.b)]

        def norm(res):
            rc, out, err = res
            for r in roots:
                out, err = out.replace(r, b'$ROOT'), err.replace(r, b'$ROOT')
            return rc, out, err

        results = [norm(r) for r in results]
        ref = results[-1]
        for res, name in zip(results[:-1], names[:-1]):
            if res == ref:
                continue
            details = []
            if res[0] != ref[0]:
                details.append('exit: %s %s, %s %s' % (name, res[0], names[-1], ref[0]))
            if res[1] != ref[1]:
                diff = udiff(res[1], ref[1], name, names[-1]).splitlines(True)
                if len(diff) > 150:
                    diff = diff[:150] + ['... (%d more lines)\n' % (len(diff) - 150)]
                details.append('stdout diff:\n' + ''.join(diff).rstrip('\n'))
            if res[2] != ref[2]:
                details.append('stderr:\n--- %s:\n%s--- %s:\n%s' % (
                    name, show_err(res[2]), names[-1], show_err(ref[2])))
            if res[1].count(b'\n') + ref[1].count(b'\n') < 120:
                details.append('--- %s:\n%s--- %s:\n%s' % (name, show(res), names[-1], show(ref)))
            self.fail('%s: %s differs from %s' % (what, name, names[-1]), '\n'.join(details))

    def status_round(self, full):
        h = self.h
        args = ['status', '-A', '-C']
        jobs = [([HG, '--debug', '--config', 'ui.message-output=stderr'] + args, h.a)]
        names = ['hg (mount)']
        if h.hgvfs_status:
            jobs.append(([h.hgvfs] + args, h.a))
            names.append('hgvfs status')
        jobs.append(([HG] + args, h.b))
        names.append('hg (checkout)')
        results = run_all(jobs)
        # The extension must have asked the daemon and used its answer.
        rc, out, err = results[0]
        lines = err.split(b'\n')
        notes = [l for l in lines if l.startswith(b'hgvfs:')]
        # When hg itself refuses (an invalid .hgignore), the extension
        # aborts before asking, or the daemon refuses too and hg's own walk
        # aborts: either way the output is compared below.
        refused = results[-1][0] != 0 and (not notes or len(notes) == 1 and notes[0].startswith(
            b'hgvfs: the daemon did not answer (error: '))
        if not h.no_mount and notes != [b'hgvfs: status from the daemon'] and not refused:
            self.fail('the extension did not use the daemon\'s answer',
                      '\n'.join(l.decode('latin-1') for l in notes) or '(no hgvfs lines)')
        results[0] = (rc, out, b'\n'.join(l for l in lines if l not in notes))
        if full and not h.no_mount:
            # hg's own walk without the daemon may rewrite .hg/dirstate (it
            # records files it found clean), so it runs alone.
            results.insert(-1, run([HG] + args + ['--config', 'hgvfs.socket='], h.a))
            names.insert(-1, 'hg without the daemon (mount)')
        if full and (not h.no_mount or h.small):
            # hg without the extension must refuse the mount's dirstate.
            rc, out, err = run([HG] + args + ['--config', 'extensions.hgvfs=!'], h.a)
            if rc != 255 or b'requires features unknown to this Mercurial: hgvfs-dirstate' \
                    not in err:
                self.fail('hg without the extension did not refuse the mount',
                          'exit %d\n%s%s' % (rc, out.decode('latin-1'), err.decode('latin-1')))
        self.compare('status -A -C', results, names)
        return parse_status(results[-1][1])

    def variant_round(self, s):
        """One more form of status, in both trees and through hgvfs status."""
        h = self.h
        r = self.rng.randrange(7)
        cwd = b''
        if r == 0:
            name, cwd, args = 'subdir', pick(self.rng, s.dirs, b''), ['status', '-A', '-C']
        elif r == 1:
            name, cwd = 'subdir-pattern', pick(self.rng, s.dirs, b'')
            args = ['status', '-A', '-C', '.']
        elif r == 2:
            name, args = 'include', ['status', '-A', '-I', self.rng.choice(
                ['glob:**.c', 'glob:*', 're:.*\\.txt$', 'path:lib', 'glob:src/**'])]
        elif r == 3:
            name = 'rev'
            args = ['status', '-C', '--rev', h.revs[self.rng.choice(['r0', 'r1', 'other'])]]
        elif r == 4:
            name, args = 'flags', ['status', '-mardui0']
        elif r == 5:
            name, args = 'json', ['status', '-A', '-T', 'json']
        else:
            paths = self.rng.sample(sorted(s.tree), min(2, len(s.tree))) + [b'no/such']
            name, args = 'paths', ['status', '-A', '-C'] + [fsarg(p) for p in paths]
        wa = os.path.join(os.fsencode(h.a), cwd)
        wb = os.path.join(os.fsencode(h.b), cwd)
        if cwd and not (os.path.isdir(wa) and os.path.isdir(wb)):
            return
        jobs = [([HG] + args, wa)]
        names = ['hg (mount)']
        hgvfs_status = h.hgvfs_status and name not in h.skip
        if hgvfs_status:
            jobs.append(([h.hgvfs] + args, wa))
            names.append('hgvfs status')
        jobs.append(([HG] + args, wb))
        names.append('hg (checkout)')
        results = run_all(jobs)
        if hgvfs_status and results[1][0] != 0 and b'not supported' in results[1][2]:
            # A form hgvfs status declines on purpose: counted, not failed.
            h.unsupported.add(results[1][2].strip().decode('latin-1'))
            del results[1], names[1]
        self.compare('%s in %r' % (' '.join(args), cwd or b'.'), results, names)

    def diff_round(self):
        h = self.h
        for args in ([HG, 'diff', '--git'], [HG, 'resolve', '--list'],
                     [HG, 'log', '-r', 'parents()', '-T', '{rev}:{node}\n']):
            res = run_all([(args, h.a), (args, h.b)])
            self.compare(' '.join(args[1:]), res, ['hg (mount)', 'hg (checkout)'])

    def tree_round(self):
        ta, tb = walk(self.h.a), walk(self.h.b)
        if ta != tb:
            self.fail('trees differ', '\n'.join(tree_diff(ta, tb)[:40]))
        return tb

    def run(self, steps):
        h = self.h
        status = self.status_round(full=True)
        tree = self.tree_round()
        for self.step in range(1, steps + 1):
            s = State(tree, status, *merge_state(h.b))
            desc, actions = plan(self.rng, s, self.step, h.skip_ops)
            self.log.append((self.step, desc))
            if h.verbose:
                print('  seed %d step %d: %s' % (self.seed, self.step, desc), flush=True)
            ra, rb = apply_both(h.a, h.b, actions)
            if h.verbose:
                for act, res in zip(actions, rb):
                    if act[0] == 'hg':
                        print('      hg %s: exit %s %s' % (' '.join(act[1]), res[0], (
                            res[1] + res[2]).decode('latin-1').strip().split('\n')[-1][:100]))
            if ra != rb:
                lines = []
                for act, x, y in zip(actions, ra, rb):
                    mark = '  ' if x == y else '≠ '
                    lines.append('%s%r\n    mount:    %r\n    checkout: %r' % (
                        mark, act[:2] if act[0] != 'hg' else act, x, y))
                self.fail('operation results differ', '\n'.join(lines))
            if h.perturb == self.step:
                victim = sorted(p for p, v in walk(h.b).items() if v[0] == 'file')
                with open(os.path.join(os.fsencode(h.b), victim[0]), 'ab') as f:
                    f.write(b'perturbed\n')
                self.log.append((self.step, 'PERTURB: append to %r in the checkout only'
                                 % victim[0]))
            full = self.step % CHECK_EVERY == 0 or self.step == steps
            status = self.status_round(full)
            tree = self.tree_round()
            self.count(s, actions, rb, status)
            if full:
                self.diff_round()
                self.variant_round(State(tree, status))

    def count(self, s, actions, results, status):
        """Counts how often the cases this test is about happened (printed
        per seed, so that a change of the fixture or of the weights that
        makes them rare shows)."""
        cmds = [(a[1], r) for a, r in zip(actions, results) if a[0] == 'hg']
        dirty = any(c in 'MAR!' for c in s.status.values())
        for args, (rc, _, _) in cmds:
            if args[0] == 'update' and '-C' not in args and dirty:
                self.stats['update with local changes'] += 1
            if args[0] == 'merge' and rc in (0, 1):
                self.stats['merge'] += 1
            if args[0] == 'commit' and s.merging and rc == 0:
                self.stats['merge commit'] += 1
            if args[0] == 'resolve' and s.mergestate:
                self.stats['resolve'] += 1
        if any(args[0] in ('update', 'merge') for args, _ in cmds):
            # A file of p1's manifest that `hg status -A` does not list
            # (the removed file an update --tool :local kept removed).
            out = run([HG, 'files', '-0', '-r', '.'], self.h.b)[1]
            if set(out.split(b'\0')[:-1]) - set(status):
                self.stats['p1 file hg status does not list'] += 1


class Harness:
    def __init__(self, hgvfs, work):
        self.hgvfs = hgvfs
        self.work = work
        self.no_mount = flag('HGVFS_STATUS_NO_MOUNT')
        self.small = self.no_mount and flag('HGVFS_STATUS_SMALL')
        self.hgvfs_status = not self.no_mount and not flag('HGVFS_STATUS_NO_HGVFS_STATUS')
        self.perturb = env_int('HGVFS_STATUS_PERTURB', 0)
        self.verbose = flag('HGVFS_STATUS_VERBOSE')
        self.mounted = None
        self.unsupported = set()
        self.skip = set(filter(None, os.environ.get('HGVFS_STATUS_SKIP', '').split(',')))
        self.skip_ops = set(filter(None, os.environ.get('HGVFS_STATUS_SKIP_OPS', '').split(',')))
        self.env = dict(BASE_ENV, HGVFS_HOME=os.path.join(work, 'home'))
        BASE_ENV['HGVFS_HOME'] = self.env['HGVFS_HOME']
        self.template = os.path.join(work, 'template')
        self.revs = make_template(self.template)

    def unmount(self):
        mnt, self.mounted = self.mounted, None
        if mnt is None:
            return
        try:
            rc, out, err = run([self.hgvfs, 'unmount', mnt], '/', self.env)
        except OSError as e:  # the binary could not run: unmount anyway
            rc, out, err = None, b'', str(e).encode()
        if rc != 0 or is_mounted(mnt):
            sys.stderr.write('hgvfs unmount %s failed (%s): %s; umount -l\n'
                             % (mnt, rc, err.decode(errors='replace').strip()))
            subprocess.call(['umount', '-l', mnt])
            if is_mounted(mnt):
                subprocess.call(['fusermount3', '-uz', mnt])

    def setup_seed(self, seed):
        d = os.path.join(self.work, 'seed%d' % seed)
        os.makedirs(d)
        repo = os.path.join(d, 'repo')
        shutil.copytree(self.template, repo, symlinks=True)
        self.b = os.path.join(d, 'checkout')
        must([HG, 'clone', '-q', '-U', repo, self.b], d)
        must([HG, 'update', '-q', '-r', self.revs['start']], self.b)
        self.a = os.path.join(d, 'mnt')
        if self.no_mount:
            must([HG, 'clone', '-q', '-U', repo, self.a], d)
            must([HG, 'update', '-q', '-r', self.revs['start']], self.a)
            if self.small:
                here = os.path.dirname(os.path.abspath(__file__))
                must(['/usr/bin/python3', os.path.join(here, '..', 'oracle', 'small_dirstate.py'),
                      self.a, os.path.join(here, '..', '..', 'hgext', 'hgvfs.py')], d)
        else:
            os.mkdir(self.a)
            self.mounted = self.a
            must([self.hgvfs, 'mount', '--rev', self.revs['start'], repo, self.a], d, self.env)
            # The update's untracked-file checks from the daemon's list for
            # every update, not only those creating many files (odd seeds:
            # both ways are compared with the checkout).
            if seed % 2:
                with open(os.path.join(self.a, '.hg', 'hgrc'), 'a') as f:
                    f.write('\n[hgvfs]\nuntracked-check-after = 0\n')

    def teardown_seed(self):
        self.unmount()


def is_mounted(path):
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo') as f:
        return any(line.split()[4] == path for line in f)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    hgvfs = os.path.abspath(sys.argv[1])
    nseeds = int(sys.argv[2]) if len(sys.argv) > 2 else env_int('HGVFS_STATUS_SEEDS', 3)
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else env_int('HGVFS_STATUS_STEPS', 40)
    if os.environ.get('HGVFS_STATUS_SEED'):
        seeds = [int(x) for x in os.environ['HGVFS_STATUS_SEED'].split(',')]
    else:
        seeds = list(range(1, nseeds + 1))

    work = tempfile.mkdtemp(prefix='hgvfs-status-diff.')
    h = None

    def cleanup():
        if h is not None:
            h.unmount()
        if flag('HGVFS_STATUS_KEEP'):
            print('kept %s' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

    t0 = time.time()
    h = Harness(hgvfs, work)
    failed = []
    for seed in seeds:
        ts = time.time()
        try:
            h.setup_seed(seed)
            seed_run = Seed(h, seed)
            try:
                seed_run.run(steps)
            finally:
                print('seed %d: %s' % (seed, ', '.join(
                    '%s %d' % kv for kv in sorted(seed_run.stats.items())) or 'no updates'))
            print('seed %d: %d steps passed (%.0fs)' % (seed, steps, time.time() - ts), flush=True)
        except Mismatch as e:
            print(e, flush=True)
            failed.append(seed)
        except Exception as e:  # a broken mount: report it and go on
            import traceback
            traceback.print_exc()
            print('seed %d: error: %s' % (seed, e), flush=True)
            failed.append(seed)
        finally:
            h.teardown_seed()
    print('%s: %d seeds x %d steps, %d failed%s (%.0fs)%s' % (
        'FAIL' if failed else 'PASS', len(seeds), steps, len(failed),
        ' (seeds %s)' % ','.join(map(str, failed)) if failed else '', time.time() - t0,
        ' [no mount: A is a second checkout]' if h.no_mount else ''))
    for msg in sorted(h.unsupported):
        print('note: hgvfs status declined: %s' % msg)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/python3
"""hg update in a real mount, done by the daemon's native checkout
(docs/CHECKOUT.md), against what the revisions hold.

Makes a repository with the real hg (two revisions that differ in a changed
file, a directory removed and one added, a file that becomes a directory
and one the reverse, a flag change, a symlink that becomes a file, and a
wide directory with hundreds of changes), mounts its tip and checks:

1. Kernel caches follow the update: a name that did not exist (a cached
   negative entry) appears, a changed file's size and bytes are the new
   ones, a listing of a directory shows its new entries. A file held open
   across the update reads what it was; the cwd of a process inside a
   changed directory stays usable. The mount equals `hg archive` of the
   revision, `hg status` and `hgvfs status` are empty, the daemon's log
   says the checkout was native, and the overlay holds no file.
2. A daemon SIGKILLed at a random moment while `hg update` runs, then
   mounted again: the mount holds one revision's files, the old or the
   new, never a mix. `hg update -C` then gives the revision.
3. The actions of a linear update, which the extension computes from the
   daemon's entries of only the changed paths (no manifest read), are
   hg's: `hg update --debug` in the mount and in a normal checkout list
   the same actions, clean and with local changes under -C, and leave the
   same files and status. The debug output must say the daemon's entries
   were used, or the comparison would not test them.

Usage: /usr/bin/python3 checkout_mount.py /path/to/hgvfs WORKDIR
WORKDIR must exist and be empty; the caller (checkout_mount.sh) unmounts
WORKDIR/mnt and removes WORKDIR if this script could not.

Environment:
  HGVFS_CHECKOUT_TRIALS=N   SIGKILL trials (default 8)
"""

import glob
import os
import random
import signal
import stat
import subprocess
import sys
import time

from hg_env import HG_ENV

HG = '/usr/bin/hg'
TRIALS = int(os.environ.get('HGVFS_CHECKOUT_TRIALS', '8'))
failures = []


def run(cmd, cwd, env, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    if check and p.returncode != 0:
        raise RuntimeError('%s failed (%d): %s%s' % (
            ' '.join(map(str, cmd)), p.returncode, p.stdout.decode('latin-1'),
            p.stderr.decode('latin-1')))
    return p


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL: %s' % what, file=sys.stderr)


def write(root, path, data):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb') as f:
        f.write(data)


def make_repo(repo, env):
    run([HG, 'init', repo], '/', env)
    write(repo, 'a/one.txt', b'one\n')
    write(repo, 'a/two.txt', b'two\n')
    write(repo, 'a/sub/deep.txt', b'deep\n')
    write(repo, 'b/x.txt', b'x\n')
    write(repo, 'c', b'c is a file\n')
    write(repo, 'd/f.txt', b'in d\n')
    write(repo, 'run.sh', b'#!/bin/sh\n')
    os.symlink('a/one.txt', os.path.join(repo, 'link'))
    for i in range(600):
        write(repo, 'wide/f%03d' % i, b'%d\n' % i)
    run([HG, 'commit', '-A', '-q', '-m', 'r0'], repo, env)
    write(repo, 'a/two.txt', b'two, and longer than before\n')
    for p in ('b/x.txt', 'c', 'd/f.txt', 'link'):
        os.unlink(os.path.join(repo, p))
    os.rmdir(os.path.join(repo, 'b'))
    os.rmdir(os.path.join(repo, 'd'))
    write(repo, 'c/inner.txt', b'c is a directory\n')
    write(repo, 'd', b'd is a file\n')
    os.chmod(os.path.join(repo, 'run.sh'), 0o755)
    write(repo, 'link', b'link is a file\n')
    write(repo, 'e/new/n.txt', b'new\n')
    for i in range(0, 600, 2):
        write(repo, 'wide/f%03d' % i, b'changed %d\n' % i)
    for i in range(1, 100, 4):
        os.unlink(os.path.join(repo, 'wide/f%03d' % i))
    for i in range(600, 700):
        write(repo, 'wide/f%03d' % i, b'%d\n' % i)
    run([HG, 'addremove', '-q'], repo, env)
    run([HG, 'commit', '-q', '-m', 'r1'], repo, env)


def snapshot(root):
    """{path: (kind, exec, bytes or target)} below root, .hg excluded."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == '.':
            dirnames[:] = [d for d in dirnames if d != '.hg']
            filenames = [f for f in filenames if f != '.hg']
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            path = os.path.normpath(os.path.join(rel, name))
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[path] = ('l', False, os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                with open(full, 'rb') as f:
                    out[path] = ('f', bool(st.st_mode & 0o100), f.read())
            elif stat.S_ISDIR(st.st_mode):
                out[path] = ('d', False, b'')
    return out


def archive(repo, rev, dest, env):
    run([HG, 'archive', '-q', '-r', rev, dest], repo, env)
    os.unlink(os.path.join(dest, '.hg_archival.txt'))
    return snapshot(dest)


def describe(a, b):
    lines = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            lines.append('  %s: %r != %r' % (p, a.get(p), b.get(p)))
    return '\n'.join(lines[:10])


def daemon_pid(home):
    with open(glob.glob(os.path.join(home, 'clients', '*', 'daemon.pid'))[0]) as f:
        return int(f.read())


def log_text(home):
    with open(glob.glob(os.path.join(home, 'clients', '*', 'hgvfs.log'))[0], 'rb') as f:
        return f.read().decode('latin-1')


def overlay_files(home):
    root = glob.glob(os.path.join(home, 'clients', '*', 'overlay', 'files'))[0]
    return sum(len(files) for _d, _s, files in os.walk(root))


def actions(debug_output):
    """The sorted ' path: why -> action' lines of `hg update --debug`."""
    out = []
    for line in debug_output.decode('latin-1').splitlines():
        if line.startswith(' ') and ' -> ' in line and ': ' in line:
            out.append(line)
    return sorted(out)


def compare_updates(hgvfs, mnt, checkout, env):
    """Section 3: the same updates in the mount and a normal checkout."""
    local = [
        ('write', 'a/one.txt', b'local edit, same in both revisions\n'),
        ('write', 'a/two.txt', b'local edit of a file the update changes\n'),
        ('write', 'added.txt', b'added\n'),
        ('add', 'added.txt', None),
        ('remove', 'a/sub/deep.txt', None),
        ('write', 'wide/f650', b'edited, absent in revision 0\n'),
    ]
    for name, edits, args in (
        ('clean update to 0', [], ['update', '--debug', '-r', '0']),
        ('clean update to tip', [], ['update', '--debug', 'tip']),
        ('update -C with local changes', local,
         ['update', '--debug', '-C', '-r', '0']),
        ('update -C back with local changes',
         [('write', 'a/two.txt', b'another edit\n'),
          ('remove', 'd/f.txt', None)],
         ['update', '--debug', '-C', 'tip']),
    ):
        results = []
        for root in (mnt, checkout):
            for kind, path, data in edits:
                if kind == 'write':
                    write(root, path, data)
                else:
                    run([HG, kind, '-q', path], root, env)
            p = run([HG] + args, root, env, check=False)
            st = run([HG, 'status', '-A'], root, env).stdout
            results.append((p.returncode, actions(p.stdout), snapshot(root), st,
                            p.stdout))
        (rc1, act1, snap1, st1, out1), (rc2, act2, snap2, st2, _o) = results
        check(b'hgvfs: manifests of ' in out1,
              '%s: the extension used the daemon\'s entries' % name)
        check(rc1 == rc2, '%s: exit %d in the mount, %d in a checkout' % (name, rc1, rc2))
        check(act1 == act2 and act1, '%s: the actions differ from a checkout:\n%s'
              % (name, '\n'.join(sorted(set(act1) ^ set(act2))[:10])))
        check(snap1 == snap2, '%s: the files differ from a checkout:\n%s'
              % (name, describe(snap1, snap2)))
        check(st1 == st2, '%s: hg status -A differs from a checkout' % name)
        hs = run([hgvfs, 'status', '-A'], mnt, env).stdout
        check(hs == st2, '%s: hgvfs status -A differs from hg status -A in a checkout'
              % name)


def main():
    hgvfs, work = sys.argv[1], sys.argv[2]
    home = os.path.join(work, 'home')
    env = dict(HG_ENV, HGVFS_HOME=home)
    repo = os.path.join(work, 'repo')
    mnt = os.path.join(work, 'mnt')
    os.makedirs(mnt)
    make_repo(repo, env)
    old = archive(repo, '0', os.path.join(work, 'arch0'), env)
    new = archive(repo, '1', os.path.join(work, 'arch1'), env)
    run([hgvfs, 'mount', repo, mnt], work, env)
    try:
        # 0. The extension the mount enables is the build's compiled
        # package: hg imports its bytecode instead of compiling the source
        # on every command.
        with open(os.path.join(mnt, '.hg', 'hgrc'), 'rb') as f:
            ext = [line.split(b'=', 1)[1].strip() for line in f
                   if line.split(b'=', 1)[0].strip() == b'hgvfs'][0]
        verbose = run([HG, 'status'], mnt, dict(env, PYTHONVERBOSE='1')).stderr
        pyc = os.path.join(ext, b'__pycache__', b'__init__.')
        check(b"code object from '" + pyc in verbose,
              'hg did not import the extension from %s' % pyc.decode('latin-1'))
        # 1. Caches, held files, cwd.
        check(not os.path.exists(os.path.join(mnt, 'b/x.txt')), 'b/x.txt absent at tip')
        two = os.path.join(mnt, 'a/two.txt')
        check(os.stat(two).st_size == len(new['a/two.txt'][2]), 'size of a/two.txt at tip')
        os.listdir(os.path.join(mnt, 'wide'))
        held = os.open(two, os.O_RDONLY)
        os.chdir(os.path.join(mnt, 'wide'))
        try:
            run([HG, 'update', '-q', '-r', '0'], mnt, env)
            check(os.pread(held, 1000, 0) == new['a/two.txt'][2],
                  'a file held open across the update reads what it was')
            check(os.stat(two).st_size == len(old['a/two.txt'][2]),
                  'the size of a/two.txt after the update is the new one')
            with open(two, 'rb') as f:
                check(f.read() == old['a/two.txt'][2], 'a/two.txt reads the new bytes')
            check(os.path.exists(os.path.join(mnt, 'b/x.txt')),
                  'a name cached as absent appears')
            check(os.getcwd() == os.path.join(mnt, 'wide'), 'the cwd stays usable')
            want = sorted(p[len('wide/'):] for p in old if p.startswith('wide/'))
            check(sorted(os.listdir('.')) == want, 'the listing of the cwd is the new one')
        finally:
            os.chdir(work)
            os.close(held)
        snap = snapshot(mnt)
        check(snap == old, 'the mount equals revision 0 after hg update -r 0:\n'
              + describe(snap, old))
        st = run([HG, 'status'], mnt, env).stdout
        check(st == b'', 'hg status after the update is empty: %r' % st)
        st = run([hgvfs, 'status'], mnt, env).stdout
        check(st == b'', 'hgvfs status after the update is empty: %r' % st)
        for _ in range(50):  # the log is flushed once a second
            if ' checkout ' in log_text(home):
                break
            time.sleep(0.1)
        check(' checkout ' in log_text(home) and '0 left to hg' in log_text(home),
              'the daemon did the checkout')
        run([HG, 'update', '-q', 'tip'], mnt, env)
        snap = snapshot(mnt)
        check(snap == new, 'the mount equals tip after hg update tip:\n'
              + describe(snap, new))
        check(overlay_files(home) == 0,
              'the overlay holds no file after the round trip (%d)'
              % overlay_files(home))

        # 1a. A file written with its own bytes is materialized, and equal
        # to both revisions; the update that moves the parent gives it its
        # revision's identity back, before any status after it.
        # (A status first: it gives back files equal to a parent it has
        # not seen yet, as after the round trip above.)
        same = next(p for p in sorted(new) if new[p][0] == 'f' and
                    not new[p][1] and old.get(p) == new[p])
        run([hgvfs, 'status'], mnt, env)
        write(mnt, same, new[same][2])
        check(overlay_files(home) == 1, 'rewriting %s materialized it' % same)
        run([HG, 'update', '-q', '-r', '0'], mnt, env)
        check(overlay_files(home) == 0,
              'the update left %s materialized (%d overlay files)'
              % (same, overlay_files(home)))
        snap = snapshot(mnt)
        check(snap == old, 'the mount equals revision 0:\n' + describe(snap, old))
        # The update computed its actions from the daemon's diff of the two
        # revisions, not from their whole manifests.
        out = run([HG, 'update', '--debug', 'tip'], mnt, env).stdout
        check(b'whole manifests' not in out,
              'the update fell back to whole manifests:\n%s' % out.decode('latin-1'))

        # 1b. Untracked files in the way of the update: the extension's
        # shortcut (the daemon's untracked list instead of an lstat per
        # created file) must answer as hg's own checks do. The path
        # conflicts with hg's path-conflict checks on (without them, hg
        # stops half-way through such an update, in a normal checkout too,
        # and not even `hg update -C` recovers).
        paths = ['--config', 'experimental.merge.checkpathconflicts=true']
        for name, setup, extra in (
            ('a differing untracked file', [('b/x.txt', b'mine\n')], []),
            ('an equal untracked file', [('b/x.txt', old['b/x.txt'][2])], []),
            ('an untracked file where a directory comes', [('b', b'b\n')],
             paths),
            ('an untracked file in a directory that becomes a file',
             [('c/extra', b'extra\n')], paths),
        ):
            outs = []
            for variant in (
                ['--config', 'hgvfs.untracked-check-after=0'],
                ['--config', 'hgvfs.untracked-check-after=1000000000',
                 '--config', 'hgvfs.native-update=false'],
            ):
                variant = variant + extra
                for path, data in setup:
                    write(mnt, path, data)
                p = run([HG] + variant + ['update', '-r', '0'], mnt, env,
                        check=False)
                outs.append((p.returncode, p.stdout, p.stderr,
                             snapshot(mnt) == old))
                for path, _data in setup:
                    full = os.path.join(mnt, path)
                    if os.path.lexists(full):
                        os.unlink(full)
                run([HG, 'update', '-q', '-C', 'tip'], mnt, env)
                run([HG, 'purge', '-q', '--config', 'extensions.purge='],
                    mnt, env)
            check(outs[0] == outs[1], '%s: the shortcut and hg differ:\n%r\n%r'
                  % (name, outs[0], outs[1]))
        snap = snapshot(mnt)
        check(snap == new, 'back at tip after the untracked-file cases:\n'
              + describe(snap, new))

        # 2. SIGKILL while hg update runs.
        rng = random.Random(7)
        # How long an update takes here, to spread the kills over it.
        t0 = time.monotonic()
        run([HG, 'update', '-q', '-r', '0'], mnt, env)
        took = time.monotonic() - t0
        at = '0'
        for trial in range(TRIALS):
            to = 'tip' if at == '0' else '0'
            pid = daemon_pid(home)
            proc = subprocess.Popen([HG, 'update', '-q', '-r', to], cwd=mnt,
                                    env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            delay = rng.uniform(0, took * 1.2)
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            rc = proc.wait(timeout=120)
            for _ in range(200):
                if not os.path.exists('/proc/%d' % pid):
                    break
                time.sleep(0.05)
            run([hgvfs, 'mount', repo, mnt], work, env)
            snap = snapshot(mnt)
            target = new if to == 'tip' else old
            source = old if to == 'tip' else new
            which = ('target' if snap == target else 'source' if snap == source
                     else None)
            check(which is not None,
                  'trial %d: after a SIGKILL the mount is one revision, not a mix:\n%s'
                  % (trial, describe(snap, new if to == 'tip' else old)))
            # hg's own recovery: a clean update to the revision wanted.
            run([HG, 'update', '-q', '-C', '-r', to], mnt, env)
            snap = snapshot(mnt)
            want = new if to == 'tip' else old
            check(snap == want, 'trial %d: hg update -C after the kill:\n%s'
                  % (trial, describe(snap, want)))
            st = run([HG, 'status'], mnt, env).stdout
            check(st == b'', 'trial %d: hg status after recovery: %r' % (trial, st))
            print('trial %d: killed %.0f ms into a %.0f ms update (hg exit %d); the '
                  'mount held the %s revision' % (trial, delay * 1000, took * 1000, rc, which))
            at = '0' if to == '0' else 'tip'

        # 3. Actions from the daemon's entries against a normal checkout.
        run([HG, 'update', '-q', '-C', 'tip'], mnt, env)
        checkout = os.path.join(work, 'checkout')
        run([HG, 'clone', '-q', repo, checkout], work, env)
        compare_updates(hgvfs, mnt, checkout, env)
    finally:
        os.chdir(work)
        run([hgvfs, 'unmount', mnt], work, env, check=False)
    if failures:
        print('checkout_mount: %d failures' % len(failures), file=sys.stderr)
        return 1
    print('checkout_mount: passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())

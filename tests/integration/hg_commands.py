#!/usr/bin/python3
"""Stock Mercurial commands in a mount against a normal checkout.

Makes a repository with the real hg (a few dozen files in nested
directories, an executable, a symlink, a .hgignore, three commits that
modify, add, remove and rename files), mounts its tip ("A", where the mount's
.hg/hgrc enables the hgvfs extension and .hg/dirstate holds only changes) and
makes a normal checkout with `hg clone` ("B"). Then runs the same sequence in
both: file edits, then status, diff, add, remove, forget, addremove (-s 50),
files, annotate, grep (working directory and -r), commit (a FILE, then
all; then log and status), revert (FILE, --all), purge, update (refused over
an untracked file, to other revisions and back, over local changes with a
merge left unresolved, -C), debugrebuilddirstate (then status), and
five commits in a row, one kind of manifest change each (then hg verify).
Every hg command must give the same exit code, stdout and stderr in both
(each tree's root replaced by ROOT), and after each step that changes the
working copy the trees must be equal (names, kinds, exec bits, contents,
symlink targets; .hg excluded).

`hg debugdirstate` is not compared: in A it lists only the entries that
differ from p1 (docs/DIRSTATE.md). Instead its line count must stay within
the number of changes made plus a few, while the revision has many more
files.

Usage: /usr/bin/python3 hg_commands.py /path/to/hgvfs WORKDIR
WORKDIR must exist and be empty; the caller (hg_commands.sh) unmounts WORKDIR/mnt
and removes WORKDIR if this script could not.

Environment:
  HGVFS_HGCMD_PERTURB=1  change B behind the script's back once: the test
                         must then fail (to see that it can)
  HGVFS_HGCMD_VERBOSE=1  print each command as it runs, with the checkout's
                         exit code and output
"""

import difflib
import os
import stat
import subprocess
import sys
import time

from hg_env import HG_ENV

HG = '/usr/bin/hg'
TIMEOUT = 60

ENV = dict(HG_ENV)

VERBOSE = os.environ.get('HGVFS_HGCMD_VERBOSE', '') not in ('', '0')
PERTURB = os.environ.get('HGVFS_HGCMD_PERTURB', '') not in ('', '0')


def start(cmd, cwd):
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return 'timeout', out, err
    return proc.returncode, out, err


def must(cmd, cwd):
    rc, out, err = finish(start(cmd, cwd))
    if rc != 0:
        raise RuntimeError('%s failed (%s): %s%s' % (' '.join(cmd), rc, out.decode(errors='replace'),
                                                     err.decode(errors='replace')))
    return out


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


HGIGNORE = b'''syntax: glob
*.o
build/
syntax: regexp
^tmp/
\\.bak$
'''


def make_repo(repo):
    """Three commits on default; the working copy is left at the tip."""
    must([HG, 'init', repo], '/')
    j = lambda p: os.path.join(repo, p)
    hg = lambda *a: must([HG] + list(a) + (['-d', '0 0'] if a[0] == 'commit' else []), repo)
    for d in ('core', 'util', 'net/proto'):
        for i in range(6):
            write(j('src/%s/f%d.c' % (d, i)),
                  b''.join(b'/* %s %d line %d */ int v%d_%d = %d;\n' % (d.encode(), i, n, i, n, n)
                           for n in range(12)))
    for d in ('guide', 'guide/deep/er', 'api'):
        for i in range(4):
            write(j('docs/%s/page%d.txt' % (d, i)), b'page %d of %s\nneedle here\n' % (i, d.encode()))
    write(j('README'), b'hello\nneedle in README\n')
    write(j('Makefile'), b'all:\n\tcc -o main src/core/f0.c\n')
    write(j('bin/tool.sh'), b'#!/bin/sh\necho tool\n', 0o755)
    write(j('lib/empty'), b'')
    write(j('lib/data.txt'), b'data\n' * 30)
    write(j('.hgignore'), HGIGNORE)
    os.symlink('src/core/f0.c', j('link'))
    hg('commit', '-qA', '-m', 'r0')

    write(j('src/core/f1.c'), b'/* rewritten in r1 */\nint needle = 1;\n')
    write(j('docs/api/page1.txt'), b'page 1 of api, r1\n')
    write(j('src/util/new.c'), b'int new_in_r1;\n')
    write(j('docs/guide/deep/er/added.txt'), b'added in r1\n')
    os.chmod(j('Makefile'), 0o755)
    hg('remove', '-q', 'lib/empty', 'src/net/proto/f5.c')
    hg('commit', '-qA', '-m', 'r1')

    write(j('README'), b'hello\nneedle in README\nr2 line\n')
    write(j('src/net/proto/f0.c'), b'/* r2 */\n', None)
    write(j('lib/r2.txt'), b'r2\n')
    hg('mv', '-q', 'docs/guide/page3.txt', 'docs/guide/page3-moved.txt')
    hg('remove', '-q', 'src/util/f4.c')
    os.unlink(j('link'))
    os.symlink('README', j('link'))
    os.chmod(j('bin/tool.sh'), 0o644)
    hg('commit', '-qA', '-m', 'r2')


def tree(root):
    """{path: (kind, exec bit, content or symlink target)}, .hg excluded."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == '.':
            dirnames[:] = [d for d in dirnames if d != '.hg']
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            key = os.path.normpath(os.path.join(rel, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                result[key] = ('link', False, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                result[key] = ('dir', False, '')
            else:
                with open(path, 'rb') as f:
                    result[key] = ('file', bool(st.st_mode & 0o100), f.read())
    return result


class Harness:
    def __init__(self, hgvfs, work):
        self.hgvfs = hgvfs
        self.work = work
        self.repo = os.path.join(work, 'repo')
        self.a = os.path.join(work, 'mnt')
        self.b = os.path.join(work, 'checkout')
        self.compared = 0
        self.failures = 0
        self.mounted = False

    # --- setup and teardown -------------------------------------------------

    def setup(self):
        os.environ['HGVFS_HOME'] = ENV['HGVFS_HOME'] = os.path.join(self.work, 'home')
        os.makedirs(ENV['HGVFS_HOME'])
        make_repo(self.repo)
        must([HG, 'clone', '-q', self.repo, self.b], '/')
        os.makedirs(self.a)
        must([self.hgvfs, 'mount', self.repo, self.a], '/')
        self.mounted = True
        # Otherwise this would compare stock hg with stock hg.
        with open(os.path.join(self.a, '.hg', 'requires'), 'rb') as f:
            if b'hgvfs-dirstate' not in f.read().split():
                raise RuntimeError('the mount has no hgvfs-dirstate requirement')
        if b'hgvfs' not in must([HG, 'config', 'extensions'], self.a):
            raise RuntimeError('hg in the mount does not load the hgvfs extension')
        self.nfiles = len(must([HG, 'files'], self.b).splitlines())

    def teardown(self):
        if not self.mounted:
            return
        rc, out, err = finish(start([self.hgvfs, 'unmount', self.a], '/'))
        if rc != 0:
            sys.stderr.write('hgvfs unmount failed (%s): %s; umount -l\n'
                             % (rc, (out + err).decode(errors='replace')))
            subprocess.call(['umount', '-l', self.a])
        self.mounted = False

    # --- running and comparing ----------------------------------------------

    def normalize(self, data, root):
        # Paths printed by hg (e.g. "abort: ... ROOT/x", purge's messages) name
        # the tree they ran in; the two trees differ only in that prefix.
        return data.replace(root.encode(), b'ROOT')

    def mismatch(self, what, a, b):
        self.failures += 1
        print('MISMATCH: %s' % what)
        lines = difflib.unified_diff(b.splitlines(), a.splitlines(), 'checkout', 'mount',
                                     lineterm='')
        for line in lines:
            print('  ' + line)

    def hg(self, *args, compare=True, sub=''):
        """Runs hg ARGS in both trees (in their subdirectory SUB),
        concurrently; compares rc, stdout and stderr. Returns A's and B's
        results."""
        cmd = [HG] + list(args)
        if args and args[0] == 'diff':
            # A plain diff's header dates the working copy with the time
            # the command runs (workingctx.date()); the two trees' commands
            # run concurrently and may fall in different seconds.
            cmd += ['--config', 'devel.default-date=0 0']
        if VERBOSE:
            print('$ %s%s' % ('cd %s; ' % sub if sub else '', ' '.join(cmd)))
        pa, pb = start(cmd, os.path.join(self.a, sub)), start(cmd, os.path.join(self.b, sub))
        ra, rb = finish(pa), finish(pb)
        if VERBOSE:
            sys.stdout.write('  [%s] ' % rb[0] + (rb[1] + rb[2]).decode(errors='replace')
                             .replace('\n', '\n  ').rstrip(' '))
        if not compare:
            return ra, rb
        self.compared += 1
        name = ('(in %s) ' % sub if sub else '') + 'hg ' + ' '.join(args)
        rca, outa, erra = ra
        rcb, outb, errb = rb
        outa, erra = self.normalize(outa, self.a), self.normalize(erra, self.a)
        outb, errb = self.normalize(outb, self.b), self.normalize(errb, self.b)
        if rca != rcb:
            self.failures += 1
            print('MISMATCH: %s: exit code mount %s, checkout %s' % (name, rca, rcb))
        if outa != outb:
            self.mismatch('%s: stdout' % name, outa.decode(errors='replace'),
                          outb.decode(errors='replace'))
        if erra != errb:
            self.mismatch('%s: stderr' % name, erra.decode(errors='replace'),
                          errb.decode(errors='replace'))
        return ra, rb

    def status(self):
        self.hg('status', '-A', '-C')

    def check_trees(self, step):
        ta, tb = tree(self.a), tree(self.b)
        if ta == tb:
            return
        self.failures += 1
        print('MISMATCH: trees after %s' % step)
        for p in sorted(set(ta) | set(tb)):
            ea, eb = ta.get(p), tb.get(p)
            if ea == eb:
                continue
            if ea and eb and ea[:2] == eb[:2] == ('file', ea[1]):
                self.mismatch('%s: content' % p, ea[2].decode(errors='replace'),
                              eb[2].decode(errors='replace'))
                self.failures -= 1
            else:
                show = lambda e: 'absent' if e is None else '%s%s %r' % (
                    e[0], ' +x' if e[1] else '', e[2][:60])
                print('  %s: mount %s, checkout %s' % (p, show(ea), show(eb)))

    def each(self, fn):
        """Applies a file-system edit to both trees. Files it wrote get the
        same mtime in both, so that what hg decides from mtimes (which files
        it must re-read) is decided alike, whatever second each edit fell
        in."""
        since = time.time_ns() - 1000000000
        fn(self.a)
        fn(self.b)
        for dirpath, dirnames, filenames in os.walk(self.b):
            if dirpath == self.b:
                dirnames.remove('.hg')
            for name in filenames:
                pb = os.path.join(dirpath, name)
                st = os.lstat(pb)
                pa = os.path.join(self.a, os.path.relpath(pb, self.b))
                if st.st_mtime_ns >= since and os.path.lexists(pa):
                    os.utime(pa, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def check_debugdirstate(self, changes):
        """A's dirstate lists only what differs from p1; B's lists every file."""
        (rca, outa, erra), (rcb, outb, _) = self.hg('debugdirstate', '--no-dates', compare=False)
        na, nb = len(outa.splitlines()), len(outb.splitlines())
        if VERBOSE:
            print('  debugdirstate: mount %d lines, checkout %d' % (na, nb))
        limit = changes + 3
        if rca != 0 or na > limit or nb <= limit:
            self.failures += 1
            print('MISMATCH: hg debugdirstate: mount %d lines (rc %s, at most %d expected), '
                  'checkout %d lines (more than %d expected); the mount printed:'
                  % (na, rca, limit, nb, limit))
            for line in (outa + erra).decode(errors='replace').splitlines():
                print('  ' + line)

    # --- the sequence -----------------------------------------------------------

    def run(self):
        j = os.path.join
        self.status()
        self.check_debugdirstate(0)

        # Edits: modified, deleted, exec bit, unknown and ignored files.
        def edits(r):
            with open(j(r, 'src/core/f2.c'), 'ab') as f:
                f.write(b'int appended;\n')
            write(j(r, 'docs/api/page0.txt'), b'rewritten\nneedle rewritten\n')
            os.unlink(j(r, 'src/util/f1.c'))
            os.chmod(j(r, 'lib/data.txt'), 0o755)
            write(j(r, 'notes.txt'), b'notes\nneedle in notes\n')
            write(j(r, 'src/net/unknown.c'), b'unknown\n')
            write(j(r, 'build/out.o'), b'object\n')
            write(j(r, 'src/core/f2.o'), b'object\n')
            write(j(r, 'tmp/scratch'), b'scratch\n')
            write(j(r, 'README.bak'), b'backup\n')
        self.each(edits)
        if PERTURB:
            with open(j(self.b, 'src/core/f3.c'), 'ab') as f:
                f.write(b'perturbed\n')
        self.check_trees('edits')
        self.status()
        self.hg('status')
        self.hg('status', '-i')
        self.hg('status', 'src')
        self.hg('status', sub='src/net')
        self.hg('diff', '--git', sub='docs')
        self.hg('diff', '--git')
        self.hg('diff')
        self.hg('diff', 'src/core/f2.c')
        self.hg('diff', '--git', 'lib/data.txt')

        # A device node, a FIFO (hg warns about both when named, ignores
        # them when walking) and an extended attribute on a tracked file
        # (no change to hg).
        def special(r):
            os.mknod(j(r, 'dev-null'), stat.S_IFCHR | 0o600, os.makedev(1, 3))
            os.mkfifo(j(r, 'src/pipe'))
            os.setxattr(j(r, 'docs/api/page1.txt'), 'user.note', b'kept')
        self.each(special)
        self.hg('status')
        self.hg('add', 'dev-null', 'src/pipe')
        self.hg('status', 'docs', 'src')
        self.hg('diff', '--git', 'docs/api/page1.txt')

        def unspecial(r):
            if os.getxattr(j(r, 'docs/api/page1.txt'), 'user.note') != b'kept':
                raise RuntimeError('user.note lost in ' + r)
            os.unlink(j(r, 'dev-null'))
            os.unlink(j(r, 'src/pipe'))
        self.each(unspecial)

        # add, remove, forget.
        self.hg('add', 'notes.txt')
        self.hg('add', 'src/core/f2.o')
        self.hg('remove', 'src/core/f5.c')
        self.hg('remove', 'src/core/f2.c')  # modified: refused
        self.hg('forget', 'docs/guide/page0.txt')
        self.hg('forget', 'nonexistent')
        self.check_trees('add/remove/forget')
        self.status()
        self.hg('diff', '--git')

        # addremove: a new and a deleted file, then a rename with edits.
        def new_and_deleted(r):
            write(j(r, 'src/util/fresh.c'), b'fresh\n')
            os.unlink(j(r, 'docs/guide/page1.txt'))
        self.each(new_and_deleted)
        self.hg('addremove')
        self.status()

        def rename(r):
            with open(j(r, 'src/net/proto/f3.c'), 'rb') as f:
                data = f.read()
            os.unlink(j(r, 'src/net/proto/f3.c'))
            write(j(r, 'src/net/proto/renamed.c'), data + b'int edited_after_rename;\n')
        self.each(rename)
        self.hg('addremove', '-s', '50')
        self.status()
        self.hg('diff', '--git')
        self.hg('forget', 'docs/api/page1.txt')  # stays untracked through the commit
        self.check_trees('addremove')
        # remove f5, forget page0 and page1, addremove: new fresh.c, f1.c,
        # page1, f3 rename (renamed.c added, f3 removed), notes.txt, f2.o added.
        self.check_debugdirstate(13)

        # Reading commands.
        self.hg('files')
        self.hg('files', 'src')
        self.hg('files', 'path:docs/guide')
        self.hg('files', 'glob:**.c')
        self.hg('files', '.', sub='src/util')
        self.hg('annotate', 'README')
        self.hg('annotate', '-n', '-c', 'src/core/f1.c')
        self.hg('annotate', 'src/core/f2.c')  # working-copy changes show as r+
        self.hg('grep', 'needle')
        self.hg('grep', '-l', 'needle')
        self.hg('grep', '-n', 'needle', 'docs')
        self.hg('grep', '-r', '.', 'needle')
        self.hg('grep', '-r', 'all()', '-l', 'needle')
        self.hg('grep', 'no-such-pattern-anywhere')

        # commit: one FILE, then everything.
        self.hg('commit', '-d', '0 0', '-m', 'c1', 'src/core/f2.c')
        self.hg('log', '-r', '.', '-T', '{files}\n')
        self.status()
        self.hg('commit', '-d', '0 0', '-m', 'c2')
        self.hg('log', '-r', '.', '-T', '{files}\n')
        self.hg('log', '-r', '.', '-T', '{node} {file_copies}\n')
        self.status()
        self.check_trees('commit')
        self.check_debugdirstate(2)

        # Hard links: each name is a file to hg, as in a normal checkout; a
        # write through one name changes the other.
        def hard_links(r):
            os.link(j(r, 'README'), j(r, 'README.hard'))
            os.makedirs(j(r, 'linked'), exist_ok=True)
            os.link(j(r, 'src/core/f1.c'), j(r, 'linked/f1.c'))
            with open(j(r, 'linked/f1.c'), 'ab') as f:
                f.write(b'int through_a_link;\n')
            if os.stat(j(r, 'src/core/f1.c')).st_nlink != 2:
                raise RuntimeError('src/core/f1.c has no link count of 2 in ' + r)
        self.each(hard_links)
        self.hg('status')
        self.hg('diff', '--git', 'src/core/f1.c')
        self.hg('add', 'README.hard', 'linked/f1.c')
        self.hg('commit', '-d', '0 0', '-m', 'c3')
        self.hg('log', '-r', '.', '-T', '{node} {files}\n')
        self.status()
        self.check_trees('hard links')
        # An update away and back rewrites and removes linked names.
        self.hg('update', '-r', '.^')
        self.status()
        self.check_trees('hard links, update away')
        self.hg('update', 'tip')
        self.status()
        self.check_trees('hard links, update back')
        self.check_debugdirstate(2)

        # revert: a FILE, then --all (changes, an add, a remove, a rename).
        def more_edits(r):
            write(j(r, 'README'), b'changed\n')
            write(j(r, 'src/core/f0.c'), b'changed\n')
            write(j(r, 'src/net/proto/f1.c'), b'changed\n')
            write(j(r, 'new-untracked.txt'), b'x\n')
            write(j(r, 'new-added.txt'), b'x\n')
        self.each(more_edits)
        self.hg('add', 'new-added.txt')
        self.hg('remove', 'docs/api/page2.txt')
        self.hg('mv', 'src/util/f0.c', 'src/util/moved.c')
        self.status()
        self.hg('revert', '--no-backup', 'README')
        self.status()
        self.hg('revert', '--no-backup', 'link')  # clean: "no changes needed"
        self.hg('revert', '--no-backup', '--all')
        self.status()
        self.check_trees('revert')

        # purge: unknown files, then ignored ones too. Purge is core in hg 6.3
        # and asks first (stdin is /dev/null: the answer is no, it aborts).
        self.hg('purge')
        self.hg('purge', '--print')
        self.hg('purge', '--no-confirm')
        self.hg('status', '-A', '-C', '-i', '-u')
        self.check_trees('purge')
        self.hg('purge', '--no-confirm', '--all', '--print')
        self.hg('purge', '--no-confirm', '--all')
        self.status()
        self.check_trees('purge')

        # update: to another revision and back; then -C over changes.
        # An untracked file where r0 has a tracked one that differs: refused.
        self.each(lambda r: write(j(r, 'lib/empty'), b'not empty\n'))
        self.hg('update', '-r', '0')
        self.each(lambda r: os.unlink(j(r, 'lib/empty')))
        self.hg('update', '-r', '0')
        self.status()
        self.hg('files')
        self.check_trees('update -r 0')
        self.check_debugdirstate(0)
        self.hg('update', '-r', '1')
        self.status()
        self.check_trees('update -r 1')
        self.hg('update', 'tip')
        self.status()
        self.check_trees('update tip')

        def dirty(r):
            write(j(r, 'README'), b'dirty\n')
            write(j(r, 'Makefile'), b'dirty\n')
            write(j(r, 'docs/api/page0.txt'), b'dirty, and changed since r2\n')
            write(j(r, 'untracked-kept'), b'kept\n')
        self.each(dirty)
        self.hg('remove', 'docs/api/page3.txt')
        # README and Makefile are carried over; page0.txt needs a merge, which
        # HGMERGE=internal:fail leaves unresolved.
        self.hg('update', '-r', '2')
        self.status()
        self.hg('resolve', '--list')
        self.hg('diff', '--git')
        self.hg('parents', '-T', '{rev}:{node}\n')
        self.check_trees('update -r 2 with changes')
        self.check_debugdirstate(6)
        self.hg('update', '-C', '-r', 'tip')
        self.status()
        self.hg('update', '-C')
        self.status()
        self.check_trees('update -C')

        # debugrebuilddirstate, clean and with changes.
        self.hg('debugrebuilddirstate')
        self.status()
        self.each(lambda r: write(j(r, 'lib/data.txt'), b'rebuilt\n'))
        self.hg('add', 'untracked-kept')
        self.hg('debugrebuilddirstate')
        self.status()
        self.hg('debugrebuilddirstate', '--minimal')
        self.status()
        self.check_trees('debugrebuilddirstate')
        self.check_debugdirstate(3)

        # Commits in a row, one kind of manifest change each. The mount
        # writes each new manifest from its own fulltext cache and the
        # revlog's deltas (hgext/hgvfs.py, _mountmanifestcache), so each
        # node must be stock hg's; hg verify then reads every manifest back
        # from the revlog and checks it against its node.
        self.hg('commit', '-d', '0 0', '-m', 'c3')
        self.hg('log', '-r', '.', '-T', '{node} {manifest}\n')
        self.each(lambda r: write(j(r, 'src/core/f1.c'), b'edited for c4\n'))
        self.hg('commit', '-d', '0 0', '-m', 'c4', 'src/core/f1.c')
        self.each(lambda r: os.chmod(j(r, 'src/core/f1.c'), 0o755))
        self.hg('commit', '-d', '0 0', '-m', 'c5 (exec bit)')
        self.each(lambda r: write(j(r, 'zz/last/new.txt'), b'sorts last\n'))
        self.each(lambda r: write(j(r, '0first.txt'), b'sorts first\n'))
        self.hg('add', 'zz/last/new.txt', '0first.txt')
        self.hg('remove', 'src/net/proto/f0.c')
        self.hg('commit', '-d', '0 0', '-m', 'c6 (added, removed)')
        self.each(lambda r: os.symlink('README', j(r, 'link-to-readme')))
        self.hg('add', 'link-to-readme')
        self.hg('commit', '-d', '0 0', '-m', 'c7 (symlink)')
        self.hg('log', '-r', 'tip~4::tip', '-T', '{rev} {node} {manifest} {files}\n')
        self.status()
        self.check_trees('commits in a row')
        self.hg('verify', '-q')
        base = os.path.join(self.a, '.hg', 'wcache', 'hgvfs-manifest')
        if not os.path.exists(base):
            self.failures += 1
            print('MISMATCH: the mount wrote no %s: its manifest cache was not used' % base)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    h = Harness(os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2]))
    try:
        h.setup()
        h.run()
    finally:
        h.teardown()
    if h.failures:
        print('hg_commands: %d mismatches in %d commands compared' % (h.failures, h.compared))
        return 1
    print('hg_commands: %d commands compared' % h.compared)
    return 0


if __name__ == '__main__':
    sys.exit(main())

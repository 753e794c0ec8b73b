#!/usr/bin/python3
"""The mount's manifest cache and one-hash manifest write (hgext/hgvfs.py,
_mountmanifestcache and _manifestadd) against stock hg.

Two clones of one repository made by stock hg: A enables the extension as a
mount's .hg/hgrc does (its socket names nothing, so status is hg's own walk
and the dirstate map reads manifests in-process), B is plain. The same
commits are made in both, with fixed dates: edits, an exec bit, adds and
removes at both ends of the manifest, a symlink, a merge, an amend, more
commits than the cache's delta chain may hold, commits after the cache file
was truncated, after its revision was stripped, and on an older revision.
After each step `hg log` (node and manifest node of every revision) must be
the same in A and B; at the end `hg verify` must pass in A, and A must hold
its cache file (and no stock manifestfulltextcache) while B holds stock's.

Usage: /usr/bin/python3 tests/integration/manifest_cache.py   (exit 0 = passed)

Environment:
  HGVFS_MFCACHE_PERTURB=1  change B behind the script's back once: the test
                           must then fail (to see that it can)
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

HG = '/usr/bin/hg'
HERE = os.path.dirname(os.path.abspath(__file__))
EXT = os.path.normpath(os.path.join(HERE, '..', '..', 'hgext', 'hgvfs.py'))
PERTURB = os.environ.get('HGVFS_MFCACHE_PERTURB', '') not in ('', '0')
# hgext/hgvfs.py's _CHAIN_MAX: more commits than this rewrite the file.
CHAIN_MAX = 64
HEADER = struct.Struct('>8s20sQ')


class Test:
    def __init__(self, work):
        self.work = work
        self.failures = 0
        self.steps = 0
        self.env = dict(os.environ, HGPLAIN='1', HGRCPATH='', LC_ALL='C',
                        HGUSER='test <test@example.com>', HGENCODING='utf-8')
        self.env.pop('HG_PENDING', None)
        self.a = os.path.join(work, 'a')
        self.b = os.path.join(work, 'b')

    def hg(self, repo, *args):
        cmd = [HG, '--config', 'extensions.strip=', '--config', 'ui.merge=internal:local']
        cmd += list(args)
        if args[0] == 'commit':
            cmd += ['-d', '0 0']
        p = subprocess.run(cmd, cwd=repo, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError('%s in %s failed (%d): %s' % (' '.join(args), repo, p.returncode,
                                                            p.stderr.decode(errors='replace')))
        return p.stdout

    def both(self, *args):
        self.hg(self.a, *args)
        self.hg(self.b, *args)

    def each(self, fn):
        fn(self.a)
        fn(self.b)

    def compare(self, step):
        self.steps += 1
        template = ['log', '-T', '{rev} {node} {manifest % "{node}"} {p1node} {p2node}\n']
        la, lb = self.hg(self.a, *template), self.hg(self.b, *template)
        if la != lb:
            self.failures += 1
            print('FAIL %s: hg log differs\n  mount-like: %r\n  stock:      %r'
                  % (step, la[:400], lb[:400]))
        else:
            print('ok   %s' % step)

    def cachenode(self):
        path = os.path.join(self.a, '.hg', 'wcache', 'hgvfs-manifest')
        with open(path, 'rb') as f:
            magic, node, size = HEADER.unpack(f.read(HEADER.size))
        return node

    def expect(self, name, ok, detail=''):
        if ok:
            print('ok   %s' % name)
        else:
            self.failures += 1
            print('FAIL %s %s' % (name, detail))

    def setup(self):
        src = os.path.join(self.work, 'src')
        os.makedirs(src)
        self.hg(src, 'init')
        for d in ('a', 'lib/x', 'lib/y', 'src'):
            for i in range(40):
                path = os.path.join(src, d, 'f%02d.c' % i)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'w') as f:
                    f.write('%s %d\n' % (d, i))
        self.hg(src, 'commit', '-qAm', 'r0')
        self.hg(self.work, 'clone', '-q', src, self.a)
        self.hg(self.work, 'clone', '-q', src, self.b)
        with open(os.path.join(self.a, '.hg', 'hgrc'), 'a') as f:
            f.write('[extensions]\nhgvfs = %s\n[hgvfs]\nsocket = %s\n'
                    % (EXT, os.path.join(self.work, 'no-daemon')))

    def append(self, path, text):
        def edit(r):
            with open(os.path.join(r, path), 'a') as f:
                f.write(text)
        self.each(edit)

    def run(self):
        self.setup()
        j = os.path.join

        self.append('src/f01.c', 'one\n')
        self.both('commit', '-m', 'first (no cache file yet)', 'src/f01.c')
        self.compare('first commit')
        self.expect('the cache file is written',
                    os.path.exists(j(self.a, '.hg', 'wcache', 'hgvfs-manifest')))
        first = self.cachenode()

        self.append('src/f02.c', 'two\n')
        self.both('commit', '-m', 'edit', 'src/f02.c')
        self.compare('edit (from the cache file and one delta)')
        self.expect('the cache file is not rewritten for a commit on top of it',
                    self.cachenode() == first)

        self.each(lambda r: os.chmod(j(r, 'lib/x/f03.c'), 0o755))
        self.both('commit', '-m', 'exec bit')
        self.compare('exec bit')

        def addremove(r):
            with open(j(r, '0first'), 'w') as f:
                f.write('first\n')
            os.makedirs(j(r, 'zz'), exist_ok=True)
            with open(j(r, 'zz', 'last'), 'w') as f:
                f.write('last\n')
            os.symlink('a/f00.c', j(r, 'link'))
        self.each(addremove)
        self.both('add', '0first', 'zz/last', 'link')
        self.both('remove', 'a/f00.c', 'lib/y/f39.c')
        self.both('commit', '-m', 'adds at both ends, removes, a symlink')
        self.compare('adds, removes, symlink')

        if PERTURB:
            with open(j(self.b, 'src', 'f05.c'), 'a') as f:
                f.write('only in the stock clone\n')
        self.append('src/f05.c', 'amended\n')
        self.both('commit', '--amend', '-m', 'amended')
        self.compare('amend')

        # A merge: a branch from two commits back, merged into the tip.
        tip = self.hg(self.a, 'log', '-r', '.', '-T', '{rev}').decode()
        self.both('update', '-q', '-r', '.~2')
        self.append('lib/x/f10.c', 'branch\n')
        self.both('commit', '-m', 'branch')
        self.both('merge', '-q', '-r', tip)
        self.both('commit', '-m', 'merge')
        self.compare('branch and merge')

        # More commits than a chain from the file may hold: the file is
        # rewritten, and every commit still matches.
        before = self.cachenode()
        for i in range(CHAIN_MAX + 2):
            self.append('lib/y/f%02d.c' % (i % 39), 'round %d\n' % i)
            self.both('commit', '-m', 'round %d' % i)
        self.compare('%d commits in a row' % (CHAIN_MAX + 2))
        self.expect('the cache file is rewritten past the chain limit',
                    self.cachenode() != before)

        # A truncated cache file is not used.
        path = j(self.a, '.hg', 'wcache', 'hgvfs-manifest')
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) - 10)
        self.append('src/f06.c', 'after truncation\n')
        self.both('commit', '-m', 'after truncation')
        self.compare('commit after the cache file was truncated')

        # The file's revision stripped (the commit above rewrote the file
        # with its manifest): not used.
        stripped = self.hg(self.a, 'log', '-r', '.', '-T', '{manifest % "{node}"}').decode()
        self.expect('the cache file holds the last commit\'s manifest',
                    self.cachenode().hex() == stripped)
        self.both('strip', '-q', '--no-backup', '-r', '.')
        self.append('src/f08.c', 'after strip\n')
        self.both('commit', '-m', 'after strip')
        self.append('src/f08.c', 'after strip, again\n')
        self.both('commit', '-m', 'after strip, again')
        self.compare('commits after the file\'s revision was stripped')

        # On an older revision than the file's.
        self.both('update', '-q', '-C', '-r', '2')
        self.append('src/f09.c', 'old base\n')
        self.both('commit', '-m', 'on revision 2')
        self.append('src/f09.c', 'old base again\n')
        self.both('commit', '-m', 'on revision 2, again')
        self.compare('commits on an older revision')

        # A command that takes no lock keeps the working parent's text too
        # (hg diff reads it; stock keeps its file only from locked ones),
        # and only that one (hg cat of another revision leaves none).
        os.unlink(path)
        self.hg(self.a, 'cat', '-r', '0', 'src/f01.c')
        self.expect('a read of another revision\'s manifest writes no file',
                    not os.path.exists(path))
        self.append('src/f09.c', 'diffed\n')
        da, db = (self.hg(r, 'diff', '--nodates', 'src/f09.c') for r in (self.a, self.b))
        self.expect('hg diff with the file gone', da == db, '%r != %r' % (da, db))
        parent = self.hg(self.a, 'log', '-r', '.', '-T', '{manifest % "{node}"}').decode()
        self.expect('hg diff writes the working parent\'s manifest',
                    os.path.exists(path) and self.cachenode().hex() == parent)
        da, db = (self.hg(r, 'diff', '--nodates', 'src/f09.c') for r in (self.a, self.b))
        self.expect('hg diff from the file', da == db, '%r != %r' % (da, db))
        self.both('revert', '--no-backup', 'src/f09.c')

        self.hg(self.a, 'verify', '-q')
        print('ok   hg verify in the mount-like clone')
        self.expect('no stock manifestfulltextcache in the mount-like clone',
                    not os.path.exists(j(self.a, '.hg', 'wcache', 'manifestfulltextcache')))
        self.expect('stock hg kept its own in the plain clone',
                    os.path.exists(j(self.b, '.hg', 'wcache', 'manifestfulltextcache')))
        return self.failures


def main():
    work = tempfile.mkdtemp(prefix='hgvfs-mfcache.')
    try:
        failures = Test(work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('%s' % ('all passed' if not failures else '%d failed' % failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

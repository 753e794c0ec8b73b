#!/usr/bin/python3
"""The Mercurial extension (hgext/hgvfs.py) against a stub daemon.

A thread in this process serves the control protocol on a temporary socket
and returns crafted answers; stock hg (/usr/bin/hg) runs in a repository
whose .hg/hgrc enables the extension, as a mount's does. Checks that the
daemon's answer is what hg prints, that hg falls back to its own walk with
one warning when the daemon does not answer (no socket, refused, malformed
reply, error reply, other version, timeout) and silently when the answer
cannot be valid (other parent, dirstate changed in memory), and that the
command's patterns filter the answer.

Usage: /usr/bin/python3 tests/integration/hgext_test.py   (exit 0 = passed)
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HG = '/usr/bin/hg'
HERE = os.path.dirname(os.path.abspath(__file__))
EXT = os.path.normpath(os.path.join(HERE, '..', '..', 'hgext', 'hgvfs.py'))
WARNING = (b"hgvfs: the daemon did not answer (%s); "
           b"using Mercurial's own status (slower)\n")


class Stub:
    """Serves the control protocol; `answer(request) -> bytes or None` makes
    each reply line (None: never reply)."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.answer = lambda req: b'{}\n'
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        with conn:
            buf = b''
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    req = json.loads(line)
                    self.requests.append(req)
                    reply = self.answer(req)
                    if reply is None:
                        threading.Event().wait(30)
                    if not reply:
                        return
                    conn.sendall(reply)

    def close(self):
        self.sock.close()


def reply(p1, **lists):
    obj = {'version': 1, 'ok': True, 'p1': p1, 'copies': {}}
    for key in ('modified', 'added', 'removed', 'deleted', 'unknown', 'ignored', 'clean'):
        obj[key] = [p.decode('latin-1') for p in lists.get(key, [])]
    return json.dumps(obj).encode() + b'\n'


class Test:
    def __init__(self, work):
        self.work = work
        self.failures = 0
        self.env = dict(os.environ, HGPLAIN='1', HGRCPATH='', LC_ALL='C',
                        HGUSER='test <test@example.com>', HGENCODING='utf-8')
        self.env.pop('HG_PENDING', None)

    def hg(self, *args, cwd=None, ext=True, check=False):
        cmd = [HG] + list(args)
        if not ext:
            cmd += ['--config', 'extensions.hgvfs=!']
        p = subprocess.run(cmd, cwd=cwd or self.repo, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and p.returncode != 0:
            raise RuntimeError('%s failed: %s' % (cmd, p.stderr.decode()))
        return p.returncode, p.stdout, p.stderr

    def expect(self, name, got, want):
        if got == want:
            print('ok   %s' % name)
        else:
            self.failures += 1
            print('FAIL %s\n  got:  %r\n  want: %r' % (name, got, want))

    def setup(self):
        self.repo = os.path.join(self.work, 'repo')
        os.makedirs(os.path.join(self.repo, 'sub', 'deep'))
        self.hg('init', self.repo, cwd=self.work, check=True)
        for name, data in [('a', 'a\n'), ('b.c', 'b\n'), ('sub/x.c', 'x\n'),
                           ('sub/y.txt', 'y\n'), ('sub/deep/z.c', 'z\n')]:
            with open(os.path.join(self.repo, name), 'w') as f:
                f.write(data)
        with open(os.path.join(self.repo, '.hgignore'), 'w') as f:
            f.write('syntax: glob\n*.o\n')
        self.hg('commit', '-qAm', 'init', check=True)
        self.p1 = self.hg('log', '-r', '.', '-T', '{node}', check=True)[1].decode()
        self.sockpath = os.path.join(self.work, 'socket')
        self.set_socket(self.sockpath)

    def set_socket(self, path, timeout=None):
        with open(os.path.join(self.repo, '.hg', 'hgrc'), 'w') as f:
            f.write('[extensions]\nhgvfs = %s\n[hgvfs]\nsocket = %s\n' % (EXT, path))
            if timeout is not None:
                f.write('timeout = %s\n' % timeout)

    def run(self):
        self.setup()
        stub = Stub(self.sockpath)
        p1 = self.p1
        plain = self.hg('status', '-A', ext=False)[1]

        # The daemon's answer is what hg prints, even when hg would not see it.
        stub.answer = lambda req: reply(p1, modified=[b'a'], unknown=[b'new'],
                                        clean=[b'b.c', b'sub/x.c'])
        rc, out, err = self.hg('status')
        self.expect('daemon answer used', (rc, out, err), (0, b'M a\n? new\n', b''))
        self.expect('request flags (status)', stub.requests[-1],
                    {'version': 1, 'op': 'status', 'unknown': True,
                     'ignored': False, 'clean': False})
        rc, out, err = self.hg('status', '-A')
        self.expect('status -A', out, b'M a\n? new\nC b.c\nC sub/x.c\n')
        self.expect('request flags (status -A)', stub.requests[-1],
                    {'version': 1, 'op': 'status', 'unknown': True,
                     'ignored': True, 'clean': True})
        rc, out, err = self.hg('status', '-mard')
        self.expect('request flags (status -mard)', stub.requests[-1],
                    {'version': 1, 'op': 'status', 'unknown': False,
                     'ignored': False, 'clean': False})
        self.expect('status -mard', out, b'M a\n')

        # Paths are bytes: latin-1 code points in JSON.
        stub.answer = lambda req: reply(p1, unknown=[b'caf\xe9', b'na\xefve/x'])
        self.expect('byte paths', self.hg('status')[1], b'? caf\xe9\n? na\xefve/x\n')

        # Patterns filter the daemon's answer, paths relative to cwd.
        stub.answer = lambda req: reply(
            p1, modified=[b'a', b'sub/x.c', b'sub/deep/z.c'], removed=[b'sub/y.txt'],
            unknown=[b'sub/new.c', b'subway'], ignored=[b'sub/o.o'],
            clean=[b'b.c'])
        self.expect('status sub', self.hg('status', 'sub')[1],
                    b'M sub/deep/z.c\nM sub/x.c\nR sub/y.txt\n? sub/new.c\n')
        self.expect('status -I glob', self.hg('status', '-I', '**.c')[1],
                    b'M sub/deep/z.c\nM sub/x.c\n? sub/new.c\n')
        self.expect('status -X', self.hg('status', '-X', 'sub')[1], b'M a\n? subway\n')
        self.expect('status in subdir', self.hg('status', cwd=os.path.join(self.repo, 'sub'))[1],
                    b'M a\nM sub/deep/z.c\nM sub/x.c\nR sub/y.txt\n? sub/new.c\n? subway\n')
        self.expect('status . in subdir',
                    self.hg('status', '.', cwd=os.path.join(self.repo, 'sub'))[1],
                    b'M deep/z.c\nM x.c\nR y.txt\n? new.c\n')
        self.expect('status -i sub', self.hg('status', '-i', 'sub')[1], b'I sub/o.o\n')
        self.expect('status file', self.hg('status', 'sub/x.c', 'a')[1], b'M a\nM sub/x.c\n')
        self.expect('status -T json',
                    json.loads(self.hg('status', '-T', 'json', 'a')[1]),
                    [{'itemtype': 'file', 'path': 'a', 'status': 'M'}])
        # A missing path named on the command line warns as hg's walk does.
        rc, out, err = self.hg('status', 'nosuch', 'a')
        self.expect('status nosuch', (out, err),
                    (b'M a\n', b'nosuch: No such file or directory\n'))
        self.expect('status nosuch (without the extension)',
                    self.hg('status', 'nosuch', ext=False)[2],
                    b'nosuch: No such file or directory\n')
        os.mkfifo(os.path.join(self.repo, 'fifo'))
        args = ('status', 'nosuch', 'sub', 'nosuch', 'glob:nodir/*.c', 'fifo', 'a', 'a')
        self.expect('warnings for named paths as without the extension', self.hg(*args)[2],
                    self.hg(*args, ext=False)[2])
        os.unlink(os.path.join(self.repo, 'fifo'))

        # A broken .hgignore: hg's own messages, as without the extension.
        ign = os.path.join(self.repo, '.hgignore')
        with open(ign, 'rb') as f:
            saved = f.read()
        with open(ign, 'wb') as f:
            f.write(b'*.o\n')  # an invalid regexp
        stub.answer = lambda req: reply(p1, modified=[b'.hgignore'])
        rc, out, err = self.hg('status')
        self.expect('invalid .hgignore: hg aborts as without the extension',
                    (rc, out, err), self.hg('status', ext=False))
        self.expect('invalid .hgignore: hg diff does not read it',
                    self.hg('diff', '--stat')[::2], (0, b''))
        os.unlink(ign)
        os.mkdir(ign)
        stub.answer = lambda req: reply(p1, deleted=[b'.hgignore'])
        self.expect('.hgignore is a directory: hg warns, the answer is used',
                    self.hg('status'), (0, b'! .hgignore\n',
                                        b"skipping unreadable pattern file '%s': Is a directory\n"
                                        % ign.encode()))
        os.rmdir(ign)
        with open(ign, 'wb') as f:
            f.write(saved)

        # Copies come from the dirstate, not from the answer.
        self.hg('copy', '-q', 'a', 'a2', check=True)
        stub.answer = lambda req: reply(p1, added=[b'a2'])
        self.expect('status -C', self.hg('status', '-C')[1], b'A a2\n  a\n')
        self.hg('forget', '-q', 'a2', check=True)
        os.unlink(os.path.join(self.repo, 'a2'))

        # Another parent in the answer: hg walks, silently.
        count = len(stub.requests)
        stub.answer = lambda req: reply('1' * 40, modified=[b'a'])
        rc, out, err = self.hg('status', '-A')
        self.expect('other p1 -> own walk, silent', (out, err), (plain, b''))
        self.expect('other p1 -> daemon was asked', len(stub.requests), count + 1)

        # A dirstate changed in memory (commit -A marks files first): own walk.
        stub.answer = lambda req: reply(p1, modified=[b'a'])
        with open(os.path.join(self.repo, 'c'), 'w') as f:
            f.write('c\n')
        rc, out, err = self.hg('commit', '-A', '-m', 'add c')
        files = self.hg('log', '-r', '.', '-T', '{files}', check=True)[1]
        self.expect('commit -A ignores the answer for a dirty dirstate', (rc, files, err),
                    (0, b'c', b''))
        p1 = self.p1 = self.hg('log', '-r', '.', '-T', '{node}', check=True)[1].decode()
        plain = self.hg('status', '-A', ext=False)[1]

        # The daemon's answer drives commit and diff too.
        with open(os.path.join(self.repo, 'b.c'), 'w') as f:
            f.write('changed\n')
        stub.answer = lambda req: reply(p1, clean=[b'a', b'b.c'])
        self.expect('diff follows the answer', self.hg('diff')[1], b'')
        rc, out, err = self.hg('commit', '-m', 'nothing')
        self.expect('commit follows the answer', (rc, out), (1, b'nothing changed\n'))
        with open(os.path.join(self.repo, 'b.c'), 'w') as f:
            f.write('b\n')

        # The daemon does not answer: own walk, one warning per process.
        for name, answer, reason in [
            ('malformed reply', lambda req: b'not json\n', b'malformed reply'),
            ('error reply', lambda req: b'{"version": 1, "ok": false, "error": '
             b'"protocol version 2 is not supported (the daemon speaks 1)"}\n',
             b'error: protocol version 2 is not supported (the daemon speaks 1)'),
            ('other version', lambda req: b'{"version": 2, "ok": true}\n',
             b'the daemon speaks protocol version 2, this extension 1'),
            ('missing list', lambda req: b'{"version": 1, "ok": true, "p1": "%s", '
             b'"modified": "a"}\n' % p1.encode(), b'malformed reply (modified)'),
            ('closed', lambda req: b'', b'the daemon closed the connection'),
        ]:
            stub.answer = answer
            rc, out, err = self.hg('status', '-A')
            self.expect(name, (rc, out, err), (0, plain, WARNING % reason))

        os.unlink(self.sockpath)
        stub.close()
        rc, out, err = self.hg('--config', 'extensions.twice=%s' % self.twice_ext(),
                               'twice')
        self.expect('no socket: one warning for two statuses', (rc, out, err),
                    (0, plain + plain, WARNING % (b'no socket at ' + self.sockpath.encode())))

        # Nobody listening on the socket.
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(self.sockpath)
        dead.close()
        rc, out, err = self.hg('status', '-A')
        self.expect('refused', (rc, out, err),
                    (0, plain, WARNING % (self.sockpath.encode() + b': Connection refused')))
        os.unlink(self.sockpath)

        # No reply within the timeout.
        stub = Stub(self.sockpath)
        stub.answer = lambda req: None
        self.set_socket(self.sockpath, timeout=1)
        rc, out, err = self.hg('status', '-A')
        self.expect('timeout', (rc, out, err), (0, plain, WARNING % b'timed out after 1s'))
        stub.close()
        os.unlink(self.sockpath)

        # A daemon at work: it answers hello on another connection at
        # once, the status after three timeouts. The extension waits.
        stub = Stub(self.sockpath)
        hello = b'{"version": 1, "ok": true, "daemon": "hgvfs"}\n'

        def slow(req):
            if req.get('op') == 'hello':
                # As the daemon (control/protocol.cpp parseMessage): a
                # request without the protocol version is refused.
                if req.get('version') != 1:
                    return b'{"version": 1, "ok": false, "error": "malformed request: no version"}\n'
                return hello
            time.sleep(3.5)
            return reply(p1, modified=[b'a'])
        stub.answer = slow
        self.set_socket(self.sockpath, timeout=1)
        self.expect('busy daemon: waited for', self.hg('status'), (0, b'M a\n', b''))
        hellos = sum(1 for r in stub.requests if r.get('op') == 'hello')
        if hellos < 2:
            self.failures += 1
            print('MISMATCH: busy daemon: %d hello requests, at least 2 expected' % hellos)
        stub.close()
        os.unlink(self.sockpath)

        # A socket path longer than sun_path.
        longdir = os.path.join(self.work, 'l' * 100)
        os.mkdir(longdir)
        longpath = os.path.join(longdir, 'socket')
        stub = Stub.__new__(Stub)
        stub.path, stub.requests = longpath, []
        stub.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fd = os.open(longdir, os.O_PATH)
        stub.sock.bind('/proc/self/fd/%d/socket' % fd)
        os.close(fd)
        stub.sock.listen(4)
        threading.Thread(target=stub._serve, daemon=True).start()
        stub.answer = lambda req: reply(p1, modified=[b'a'])
        self.set_socket(longpath)
        self.expect('long socket path', self.hg('status')[1:], (b'M a\n', b''))
        stub.close()
        return self.failures

    def twice_ext(self):
        path = os.path.join(self.work, 'twice.py')
        with open(path, 'w') as f:
            f.write(
                'from mercurial import registrar\n'
                'cmdtable = {}\n'
                'command = registrar.command(cmdtable)\n'
                '@command(b"twice", [])\n'
                'def twice(ui, repo):\n'
                '    for _ in range(2):\n'
                '        st = repo.status(unknown=True, ignored=True, clean=True)\n'
                '        for char, files in zip(b"MAR!?IC", st):\n'
                '            for f in files:\n'
                '                ui.write(b"%s %s\\n" % (bytes([char]), f))\n')
        return path


def main():
    work = tempfile.mkdtemp(prefix='hgvfs-hgext.')
    try:
        failures = Test(work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('%s' % ('all passed' if not failures else '%d failed' % failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

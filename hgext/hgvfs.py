# hgvfs.py - Mercurial extension for working copies mounted by hgvfs
#
# Enabled by the mount in its own .hg/hgrc:
#
#   [extensions]
#   hgvfs = /path/to/hgext/hgvfs.py
#   [hgvfs]
#   socket = /path/to/client/socket
#
'''ask the hgvfs daemon for the working copy's status

The daemon knows which files were changed through the mount, so it answers
status without walking the tree. Every command that asks the dirstate for
status (status, diff, commit, revert, update, purge, ...) gets that answer.

When the answer cannot be valid for what this hg process holds in memory
(the dirstate was changed and not written yet, or names another parent),
Mercurial's own walk runs instead, silently. When the daemon does not
answer, the walk runs too and one warning is printed per process.

Config (set by the mount in .hg/hgrc)::

  [hgvfs]
  socket = /path/to/client/socket   # the daemon's control socket
  timeout = 10                      # seconds to wait for the daemon
'''

# How this fits Mercurial 6.3 (mercurial/dirstate.py, mercurial/context.py):
# dirstate.status(match, subrepos, ignored, clean, unknown) returns
# (lookup, status, mtime_boundary). Files in `lookup` are re-read by
# workingctx._checklookup, which is the only user of mtime_boundary. The
# daemon has already compared contents, so lookup is empty and
# mtime_boundary is None. Copies never come from status: `hg status -C`
# reads the dirstate's copymap (copies._dirstatecopies). addremove and
# revert's file listing use dirstate.walk, which stays Mercurial's own.

import json
import os
import socket
import stat

from mercurial.i18n import _
from mercurial.node import hex
from mercurial import (
    encoding,
    extensions,
    localrepo,
    registrar,
    scmutil,
)

testedwith = b'6.3'

configtable = {}
configitem = registrar.configitem(configtable)
configitem(b'hgvfs', b'socket', default=None)
configitem(b'hgvfs', b'timeout', default=10.0)

PROTOCOL_VERSION = 1

_warned = False


class DaemonError(Exception):
    """The daemon did not give a usable answer; str() is the reason."""


def _connect(path, timeout):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if len(path) < 108:
            sock.connect(path)
        else:
            # sun_path holds 108 bytes; reach a long path through its
            # directory's descriptor instead.
            dirfd = os.open(os.path.dirname(path), os.O_PATH)
            try:
                sock.connect(
                    b'/proc/self/fd/%d/%s' % (dirfd, os.path.basename(path))
                )
            finally:
                os.close(dirfd)
    except BaseException:
        sock.close()
        raise
    return sock


def _request(path, timeout, req):
    """Send one request, return the decoded reply object."""
    try:
        sock = _connect(path, timeout)
    except FileNotFoundError:
        raise DaemonError('no socket at %s' % os.fsdecode(path))
    except socket.timeout:
        raise DaemonError('timed out after %gs' % timeout)
    except OSError as e:
        raise DaemonError(
            '%s: %s' % (os.fsdecode(path), e.strerror or str(e))
        )
    with sock:
        try:
            sock.sendall(json.dumps(req).encode('ascii') + b'\n')
            chunks = []
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise DaemonError('the daemon closed the connection')
                end = chunk.find(b'\n')
                if end >= 0:
                    chunks.append(chunk[:end])
                    break
                chunks.append(chunk)
        except socket.timeout:
            raise DaemonError('timed out after %gs' % timeout)
        except OSError as e:
            raise DaemonError(e.strerror or str(e))
    try:
        reply = json.loads(b''.join(chunks))
    except ValueError:
        raise DaemonError('malformed reply')
    if not isinstance(reply, dict):
        raise DaemonError('malformed reply')
    if reply.get('version') != PROTOCOL_VERSION:
        raise DaemonError(
            'the daemon speaks protocol version %r, this extension %d'
            % (reply.get('version'), PROTOCOL_VERSION)
        )
    if reply.get('ok') is not True:
        error = reply.get('error')
        if not isinstance(error, str):
            raise DaemonError('malformed reply')
        raise DaemonError('error: %s' % error)
    return reply


def _pathlist(reply, key):
    value = reply.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(p, str) for p in value
    ):
        raise DaemonError('malformed reply (%s)' % key)
    try:
        return [p.encode('latin-1') for p in value]
    except UnicodeEncodeError:
        raise DaemonError('malformed reply (%s: not latin-1)' % key)


def _decodestatus(reply, unknown, ignored, clean):
    """Returns (p1 hex bytes, [modified, added, removed, deleted, unknown,
    ignored, clean]) from a reply, the lists not asked for empty."""
    p1 = reply.get('p1')
    if not isinstance(p1, str) or len(p1) != 40:
        raise DaemonError('malformed reply (p1)')
    asked = {'unknown': unknown, 'ignored': ignored, 'clean': clean}
    lists = []
    for key in (
        'modified',
        'added',
        'removed',
        'deleted',
        'unknown',
        'ignored',
        'clean',
    ):
        lists.append(_pathlist(reply, key) if asked.get(key, True) else [])
    return p1.encode('ascii'), lists


def _warn_once(ui, reason):
    global _warned
    if _warned:
        return
    _warned = True
    ui.warn(
        b"hgvfs: the daemon did not answer (%s); "
        b"using Mercurial's own status (slower)\n"
        % encoding.strtolocal(reason)
    )


def _badtype(mode):
    # The messages of dirstate._walkexplicit.
    kind = _(b'unknown')
    if stat.S_ISCHR(mode):
        kind = _(b'character device')
    elif stat.S_ISBLK(mode):
        kind = _(b'block device')
    elif stat.S_ISFIFO(mode):
        kind = _(b'fifo')
    elif stat.S_ISSOCK(mode):
        kind = _(b'socket')
    elif stat.S_ISDIR(mode):
        kind = _(b'directory')
    return _(b'unsupported file type (type is %s)') % kind


def _reportbad(dirstate, match):
    """Call match.bad for explicitly named paths that do not exist, as
    dirstate.walk does (`hg status nosuchfile` warns; commit aborts)."""
    if match.always():
        return
    files = match.files()
    if not files or b'' in files:
        return
    found = {b'.hg'}  # walk's `results`: a later duplicate is skipped
    for f in sorted(files):
        if f in found:
            continue
        try:
            kind = stat.S_IFMT(os.lstat(dirstate._join(f)).st_mode)
        except OSError as inst:
            if f in dirstate:
                found.add(f)
            elif not dirstate.hasdir(f):
                match.bad(f, encoding.strtolocal(inst.strerror))
            continue
        if kind in (stat.S_IFREG, stat.S_IFLNK):
            found.add(f)
            continue
        if kind != stat.S_IFDIR:
            match.bad(f, _badtype(kind))
        if f in dirstate:
            found.add(f)


def _usable(dirstate, match, subrepos):
    """Whether a daemon answer could describe this call at all."""
    return not (
        subrepos
        or dirstate._dirty
        or dirstate._checkcase
        or getattr(dirstate, '_sparsematchfn', None) is not None
        # purge lists the directories it walked through this callback.
        or match.traversedir is not None
        # A hook inside a transaction reads dirstate.pending, the daemon
        # .hg/dirstate.
        or b'HG_PENDING' in encoding.environ
    )


def _identity_unchanged(dirstate):
    """False if hg's loaded dirstate is not the one on disk now."""
    dmap = dirstate.__dict__.get('_map')
    if dmap is None or 'identity' not in getattr(dmap, '__dict__', {}):
        return True  # not loaded: hg holds nothing but the parents
    old = dmap.identity
    new = type(old).frompath(dirstate._opener.join(dirstate._filename))
    return new == old


def _daemonstatus(dirstate, match, ignored, clean, unknown):
    """Returns a scmutil.status from the daemon, or None to walk."""
    ui = dirstate._ui
    path = ui.config(b'hgvfs', b'socket')
    try:
        timeout = float(ui.config(b'hgvfs', b'timeout'))
    except ValueError:
        timeout = 10.0
    req = {
        'version': PROTOCOL_VERSION,
        'op': 'status',
        'unknown': bool(unknown),
        'ignored': bool(ignored),
        'clean': bool(clean),
    }
    try:
        reply = _request(path, timeout, req)
        p1, lists = _decodestatus(reply, unknown, ignored, clean)
    except DaemonError as e:
        if ignored:
            # The daemon refuses a broken .hgignore once it meets an
            # untracked file; hg itself aborts there, with its own words.
            dirstate._ignore
        _warn_once(ui, str(e))
        return None
    if p1.lower() != hex(dirstate.p1()):
        ui.debug(b'hgvfs: the daemon answered for another parent\n')
        return None
    if not _identity_unchanged(dirstate):
        ui.debug(b'hgvfs: .hg/dirstate changed since hg read it\n')
        return None
    _reportbad(dirstate, match)
    if not match.always():
        lists = [[f for f in l if match(f)] for l in lists]
    ui.debug(b'hgvfs: status from the daemon\n')
    return scmutil.status(*lists)


def _makedirstate(dirstate):
    if getattr(dirstate, '_hgvfs', False):
        return

    class hgvfsdirstate(dirstate.__class__):
        _hgvfs = True

        def status(self, match, subrepos, ignored, clean, unknown):
            orig = super(hgvfsdirstate, self).status
            if _usable(self, match, subrepos):
                # hg's own ignore rules, loaded when its status would load
                # them, so a broken .hgignore aborts or warns exactly as
                # without the extension (the lists come from the daemon):
                # before the walk when unknown but not ignored files are
                # listed, at the first untracked file when ignored ones are.
                if unknown and not ignored:
                    self._ignore
                st = _daemonstatus(self, match, ignored, clean, unknown)
                if st is not None:
                    if ignored and (st.unknown or st.ignored):
                        self._ignore
                    return [], st, None
            return orig(match, subrepos, ignored, clean, unknown)

    dirstate.__class__ = hgvfsdirstate


def _wrapdirstate(orig, repo):
    ds = orig(repo)
    if getattr(repo, '_hgvfsenabled', False):
        _makedirstate(ds)
    return ds


def extsetup(ui):
    extensions.wrapfilecache(
        localrepo.localrepository, b'dirstate', _wrapdirstate
    )


def reposetup(ui, repo):
    if not repo.local() or not repo.ui.config(b'hgvfs', b'socket'):
        return
    repo._hgvfsenabled = True
    ds, cached = localrepo.isfilecached(repo, b'dirstate')
    if cached:
        _makedirstate(ds)

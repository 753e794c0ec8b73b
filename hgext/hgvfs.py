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

`hg update` and every command that goes through Mercurial's merge machinery
hand their plain file actions (get, remove, flag change) to the daemon,
which applies them as one change of the mount's names (docs/CHECKOUT.md);
merges and conflicts stay Mercurial's, through the mount.

When the answer cannot be valid for what this hg process holds in memory
(the dirstate was changed and not written yet, or names another parent),
Mercurial's own walk runs instead, silently. When the daemon does not
answer, the walk runs too and one warning is printed per process.

Config (set by the mount in .hg/hgrc)::

  [hgvfs]
  socket = /path/to/client/socket   # the daemon's control socket
  timeout = 10                      # seconds to wait for the daemon; a
                                    # daemon that answers hello on another
                                    # connection meanwhile is busy, not
                                    # hung, and is waited for (up to 1 h)
  native-update = True              # updates through the daemon
  untracked-check-after = 64        # files an update creates before its
                                    # untracked-file checks use the daemon
'''

# How this fits Mercurial 6.3 (mercurial/dirstate.py, mercurial/context.py):
# dirstate.status(match, subrepos, ignored, clean, unknown) returns
# (lookup, status, mtime_boundary). Files in `lookup` are re-read by
# workingctx._checklookup, which is the only user of mtime_boundary. The
# daemon has already compared contents, so lookup is empty and
# mtime_boundary is None. Copies never come from status: `hg status -C`
# reads the dirstate's copymap (copies._dirstatecopies). addremove and
# revert's file listing use dirstate.walk, which stays Mercurial's own.

import heapq
import json
import mmap
import os
import socket
import stat
import struct
import time
import weakref

from mercurial.i18n import _
from mercurial.node import bin, hex, nullid, nullrev
from mercurial import (
    dirstatemap as dirstatemapmod,
    encoding,
    error,
    extensions,
    localrepo,
    manifest as manifestmod,
    mdiff,
    merge as mergemod,
    mergestate as mergestatemod,
    pathutil,
    policy,
    registrar,
    requirements as requirementsmod,
    revlog as revlogmod,
    scmutil,
    util,
)

parsers = policy.importmod('parsers')
DirstateItem = parsers.DirstateItem
propertycache = util.propertycache

testedwith = b'6.3'

configtable = {}
configitem = registrar.configitem(configtable)
configitem(b'hgvfs', b'socket', default=None)
configitem(b'hgvfs', b'timeout', default=10.0)
configitem(b'hgvfs', b'native-update', default=True)
configitem(b'hgvfs', b'untracked-check-after', default=64)

PROTOCOL_VERSION = 1

# The mount's .hg/requires names this; hg without this extension refuses the
# working copy instead of reading its dirstate as a full one.
REQUIREMENT = b'hgvfs-dirstate'

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


# One connection per daemon socket and process, kept for the process's
# life: the dirstate map may ask many questions in one command. A forked
# process (chg's workers) opens its own.
_connections = {}


# How long a request may take while the daemon keeps answering `hello` on
# another connection: the first look at a revision imports its trees,
# which at a million files outlasts any timeout meant for a hung daemon.
_BUSY_LIMIT = 3600.0


def _alive(path, timeout):
    """Whether the daemon answers a hello on a connection of its own
    within `timeout` (it serves each connection on a thread of its own)."""
    try:
        sock = _connect(path, timeout)
    except OSError:
        return False
    try:
        reply = json.loads(b''.join(_roundtrip(
            sock, {'version': PROTOCOL_VERSION, 'op': 'hello'})))
        return isinstance(reply, dict) and reply.get('ok') is True
    except (DaemonError, OSError, ValueError):
        return False
    finally:
        sock.close()


def _roundtrip(sock, req, path=None):
    """Sends `req`, returns the reply line's chunks. With `path`, a timeout
    is waited out for as long as the daemon is alive (_alive), up to
    _BUSY_LIMIT seconds; without it, the first timeout raises."""
    sock.sendall(json.dumps(req).encode('ascii') + b'\n')
    chunks = []
    started = time.monotonic()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            if (
                path is None
                or time.monotonic() - started >= _BUSY_LIMIT
                or not _alive(path, sock.gettimeout())
            ):
                raise
            continue
        if not chunk:
            raise DaemonError('the daemon closed the connection')
        end = chunk.find(b'\n')
        if end >= 0:
            chunks.append(chunk[:end])
            if end + 1 != len(chunk):
                raise DaemonError('malformed reply (more than one line)')
            return chunks
        chunks.append(chunk)


def _request(path, timeout, req):
    """Send one request, return the decoded reply object."""
    key = (path, os.getpid())
    for attempt in (0, 1):
        sock = _connections.pop(key, None)
        fresh = sock is None
        if fresh:
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
        try:
            sock.settimeout(timeout)
            chunks = _roundtrip(sock, req, path)
        except (DaemonError, OSError) as e:
            sock.close()
            hungup = isinstance(
                e, (BrokenPipeError, ConnectionResetError)
            ) or str(e) == 'the daemon closed the connection'
            if hungup and not fresh:
                continue  # a kept connection the daemon closed: once more
            if isinstance(e, socket.timeout):
                raise DaemonError('timed out after %gs' % timeout)
            if isinstance(e, DaemonError):
                raise
            raise DaemonError(e.strerror or str(e))
        _connections[key] = sock
        break
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


def _config(ui):
    path = ui.config(b'hgvfs', b'socket')
    try:
        timeout = float(ui.config(b'hgvfs', b'timeout'))
    except ValueError:
        timeout = 10.0
    return path, timeout


def _tojson(paths):
    return [p.decode('latin-1') for p in paths]


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
    path, timeout = _config(ui)
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


# The mount's dirstate (docs/DIRSTATE.md) holds only what differs from
# "every file of p1 is tracked": the entries hg has for other reasons
# (added, removed, merged, from p2, copied, or a file p1 lacks), and `u`
# entries for files of p1 hg has no entry for. Every other file of p1 is
# implied: state n, possibly dirty (the content decides, and the daemon has
# compared it). hg's own dirstatemap code runs unchanged over _lazymap, a
# dict-like that answers implied paths from p1.

_ENTRY = struct.Struct(b'>cllll')
_UNTRACKED = b'u'
_MISSING = object()


def _implieditem():
    return DirstateItem(wc_tracked=True, p1_tracked=True)


# Requests about one revision's paths before its manifest is read
# in-process instead (a walk asks one path per request).
_ASK_BEFORE_READING = 2048


class _revisionfiles:
    """Which files a revision has: asked of the daemon, whose trees answer
    a path in O(depth) and the difference of two revisions in O(changed
    directories); else read from the revision's manifest in this process
    (O(files), once per revision). The daemon cannot know a commit still
    inside this process's transaction; those come from the manifest."""

    def __init__(self, ui, repo):
        self._ui = ui
        self._repo = weakref.ref(repo)
        self._path, self._timeout = _config(ui)
        self._daemon = bool(self._path)
        self._unknown = set()  # nodes the daemon could not resolve
        self._manifests = {}
        self._asked = {}  # node -> requests about it so far

    def _ask(self, nodes, req):
        if not self._daemon or any(n in self._unknown for n in nodes):
            return None
        req = dict(req, version=PROTOCOL_VERSION)
        try:
            return _request(self._path, self._timeout, req)
        except DaemonError as e:
            reason = str(e)
            if reason.startswith('error: '):
                # The daemon answered: it does not have the revision.
                self._ui.debug(
                    b'hgvfs: %s\n' % encoding.strtolocal(reason)
                )
                self._unknown.update(nodes)
            else:
                self._daemon = False
                _warn_once(self._ui, reason)
            return None

    def manifest(self, node):
        m = self._manifests.get(node)
        if m is None:
            repo = self._repo()
            if repo is None:
                raise error.ProgrammingError(b'hgvfs: the repository is gone')
            m = repo.unfiltered()[node].manifest()
            self._manifests[node] = m
        return m

    def kinds(self, node, paths):
        """{path: flags (b'', b'x', b'l') or None} for each of `paths`."""
        paths = list(paths)
        if node == nullid or not paths:
            return dict.fromkeys(paths)
        local = self._madehere(node, paths)
        if local is not None:
            return local
        m = self._manifests.get(node)
        asked = self._asked.get(node, 0) + 1
        self._asked[node] = asked
        if m is None and asked > _ASK_BEFORE_READING:
            # A walk over the whole working copy (addremove, status of
            # every file without the daemon's answer) asks path by path:
            # past a few hundred paths, one read of the manifest is cheaper.
            m = self.manifest(node)
        if m is not None:
            # Already read in this process: asking the daemon would cost
            # more.
            return {p: (m.flags(p) if p in m else None) for p in paths}
        reply = self._ask(
            [node],
            {'op': 'files', 'node': hex(node).decode('ascii'),
             'paths': _tojson(paths)},
        )
        if reply is not None:
            kinds = reply.get('kinds')
            if (
                isinstance(kinds, list)
                and len(kinds) == len(paths)
                and all(k is None or k in ('', 'x', 'l') for k in kinds)
            ):
                return {
                    p: (None if k is None else k.encode('ascii'))
                    for p, k in zip(paths, kinds)
                }
            self._daemon = False
            _warn_once(self._ui, 'malformed reply (kinds)')
        m = self.manifest(node)
        return {p: (m.flags(p) if p in m else None) for p in paths}

    def _madehere(self, node, paths):
        """kinds() of a commit whose manifest this process wrote (still
        inside its transaction, where the daemon cannot see it): the paths
        the manifest changed from what the recorded parent's manifest
        has, the others asked of the commit's first parent; None when
        `node` is not such a commit."""
        repo = self._repo()
        if repo is None:
            return None
        repo = repo.unfiltered()
        mlog, cached = localrepo.isfilecached(repo, b'manifestlog')
        if not cached:
            return None  # nothing written through it
        made = getattr(mlog.getstorage(b'').fulltextcache, 'made', None)
        if not made:
            return None
        cl = repo.changelog
        if cl.index.get_rev(node) is None:
            return None
        record = made.get(cl.read(node)[0])
        if record is None:
            return None
        mp1, changes = record
        p1 = cl.parents(node)[0]
        if (cl.read(p1)[0] if p1 != nullid else nullid) != mp1:
            return None
        kinds = {p: changes[p] for p in paths if p in changes}
        rest = [p for p in paths if p not in changes]
        if rest:
            kinds.update(self.kinds(p1, rest))
        return kinds

    def hasfilesunder(self, node, d, excluded):
        """Whether revision `node` has a file below directory `d` that is
        not in `excluded`."""
        if node == nullid:
            return False
        reply = None
        if node not in self._manifests:
            reply = self._ask(
                [node],
                {'op': 'files', 'node': hex(node).decode('ascii'),
                 'dirs': [{'dir': d.decode('latin-1'),
                           'except': _tojson(excluded)}]},
            )
        if reply is not None:
            dirs = reply.get('dirs')
            if isinstance(dirs, list) and len(dirs) == 1:
                return dirs[0] is True
            self._daemon = False
            _warn_once(self._ui, 'malformed reply (dirs)')
        prefix = d + b'/' if d else b''
        excluded = set(excluded)
        for f in self.manifest(node):
            if f.startswith(prefix) and f not in excluded:
                return True
        return False

    def iterate(self, node):
        if node == nullid:
            return iter(())
        return iter(self.manifest(node))

    def diff(self, old, new):
        """(files only in revision old, files only in revision new)."""
        if old == new:
            return [], []
        repo = self._repo()
        if repo is not None and old != nullid and new != nullid:
            # A commit on top of `old` (what `hg commit` just made): its
            # file list names every path that can differ.
            try:
                ctx = repo.unfiltered()[new]
                parents = [p.node() for p in ctx.parents()]
            except error.RepoLookupError:
                parents = None
            if parents == [old]:
                files = ctx.files()
                before = self.kinds(old, files)
                after = self.kinds(new, files)
                return (
                    [f for f in files if before[f] is not None
                     and after[f] is None],
                    [f for f in files if before[f] is None
                     and after[f] is not None],
                )
        reply = self._ask(
            [old, new],
            {'op': 'revision-diff', 'from': hex(old).decode('ascii'),
             'to': hex(new).decode('ascii')},
        )
        if reply is not None:
            try:
                return (_pathlist(reply, 'only_from'),
                        _pathlist(reply, 'only_to'))
            except DaemonError as e:
                self._daemon = False
                _warn_once(self._ui, str(e))
        if old == nullid:
            return [], list(self.iterate(new))
        if new == nullid:
            return list(self.iterate(old)), []
        onlyold, onlynew = [], []
        for f, ((n1, _f1), (n2, _f2)) in self.manifest(old).diff(
            self.manifest(new)
        ).items():
            if n2 is None:
                onlyold.append(f)
            elif n1 is None:
                onlynew.append(f)
        return onlyold, onlynew


class _lazymap:
    """hg's dirstate dict in a mount: `explicit` (the file's entries, and
    the implied ones hg has looked at), `untracked` (files of p1 hg has no
    entry for), and every other file of p1, implied."""

    def __init__(self, files):
        self._files = files
        self.p1 = nullid
        self.explicit = {}
        self.untracked = set()
        self._kinds = {}  # path -> flags in p1, or None: not a file of p1

    def setp1(self, node):
        if node != self.p1:
            self.p1 = node
            self._kinds = {}

    def learn(self, paths):
        """Asks about many paths of p1 at once."""
        want = [p for p in paths if p not in self._kinds]
        if want:
            self._kinds.update(self._files.kinds(self.p1, want))

    def inp1(self, f):
        k = self._kinds.get(f, _MISSING)
        if k is _MISSING:
            k = self._files.kinds(self.p1, [f])[f]
            self._kinds[f] = k
        return k is not None

    def get(self, f, default=None):
        e = self.explicit.get(f)
        if e is not None:
            return e
        if f in self.untracked or not self.inp1(f):
            return default
        # hg changes entries in place: keep the one it was given.
        e = self.explicit[f] = _implieditem()
        return e

    def __getitem__(self, f):
        e = self.get(f)
        if e is None:
            raise KeyError(f)
        return e

    def __contains__(self, f):
        if f in self.explicit:
            return True
        return f not in self.untracked and self.inp1(f)

    def __setitem__(self, f, e):
        self.explicit[f] = e
        self.untracked.discard(f)

    def pop(self, f, *default):
        e = self.explicit.pop(f, None)
        if e is None and f not in self.untracked and self.inp1(f):
            e = _implieditem()
        if e is None:
            if default:
                return default[0]
            raise KeyError(f)
        if self.inp1(f):
            self.untracked.add(f)
        return e

    def __delitem__(self, f):
        self.pop(f)

    def _impliedpaths(self):
        explicit, untracked = self.explicit, self.untracked
        for f in self._files.iterate(self.p1):
            if f not in explicit and f not in untracked:
                yield f

    def __iter__(self):
        yield from list(self.explicit)
        yield from self._impliedpaths()

    def keys(self):
        return list(self)

    def items(self):
        yield from list(self.explicit.items())
        for f in self._impliedpaths():
            yield f, _implieditem()

    iteritems = items

    def values(self):
        for _f, e in self.items():
            yield e

    def __len__(self):
        return len(self.explicit) + sum(1 for _f in self._impliedpaths())

    def clear(self):
        self.explicit.clear()
        self.untracked.clear()
        self.setp1(nullid)


def _damaged(detail):
    return error.Abort(
        _(b'working directory state appears damaged!'),
        hint=b'hgvfs: %s' % detail,
    )


def _parsedirstate(data, dmap, copymap):
    """Fills `dmap` and `copymap` from the mount's dirstate `data`; returns
    (parents, the paths of its `u` entries)."""
    if not data:
        return (nullid, nullid), set()
    if len(data) < 40:
        raise _damaged(b'%d bytes' % len(data))
    parents = (data[:20], data[20:40])
    runs, untracked = [data[:40]], set()
    pos = start = 40
    end = len(data)
    while pos < end:
        if pos + _ENTRY.size > end:
            raise _damaged(b'truncated entry at byte %d' % pos)
        state, _mode, _size, _mtime, length = _ENTRY.unpack_from(data, pos)
        name = pos + _ENTRY.size
        nxt = name + length
        if length <= 0 or nxt > end:
            raise _damaged(b'bad name length at byte %d' % pos)
        if state == _UNTRACKED:
            path = data[name:nxt]
            if b'\0' in path:
                raise _damaged(b'untracked entry with a copy at byte %d' % pos)
            untracked.add(path)
            runs.append(data[start:pos])
            start = nxt
        pos = nxt
    runs.append(data[start:end])
    try:
        parsers.parse_dirstate(dmap, copymap, b''.join(runs))
    except (ValueError, RuntimeError) as e:
        raise _damaged(encoding.strtolocal(str(e)))
    return parents, untracked


class hgvfsmap(dirstatemapmod.dirstatemap):
    """The dirstate map of a mount (see _lazymap)."""

    def __init__(self, ui, opener, root, nodeconstants, use_dirstate_v2,
                 files):
        super().__init__(ui, opener, root, nodeconstants, use_dirstate_v2)
        self._files = files

    @propertycache
    def _map(self):
        self._map = _lazymap(self._files)
        self.read()
        return self._map

    def read(self):
        self.identity = util.filestat.frompath(
            self._opener.join(self._filename)
        )
        m = self._map
        parents, m.untracked = _parsedirstate(
            self._readdirstatefile(), m.explicit, self.copymap
        )
        m.setp1(parents[0])
        if not self._dirtyparents:
            dirstatemapmod.dirstatemap.setparents(self, *parents)
        elif self._parents[0] != m.p1:
            self._settle(self._parents[0])

    def _settle(self, new):
        """Moves the implied set from p1 to `new` so that hg's view of the
        dict stays as it was: a file only the old p1 has becomes an
        explicit n entry, one only `new` has becomes untracked."""
        m = self._map
        onlyold, onlynew = self._files.diff(m.p1, new)
        m.setp1(new)
        for f in onlyold:
            if f in m.untracked:
                m.untracked.discard(f)
            elif f not in m.explicit:
                m.explicit[f] = _implieditem()
        for f in onlynew:
            if f not in m.explicit:
                m.untracked.add(f)

    def setparents(self, p1, p2, fold_p2=False):
        m = self._map
        if p1 != m.p1:
            self._settle(p1)
        self._parents = (p1, p2)
        self._dirtyparents = True
        copies = {}
        if fold_p2:
            # Only explicit entries can carry merge data.
            for f, s in list(m.explicit.items()):
                if s.p2_info:
                    source = self.copymap.pop(f, None)
                    if source:
                        copies[f] = source
                    s.drop_merge_data()
        return copies

    def rebuildto(self, parent):
        """Every file of `parent` tracked and clean, nothing else: a file
        with no entries."""
        m = self._map
        m.explicit.clear()
        m.untracked.clear()
        self.copymap.clear()
        m.setp1(parent)
        dirstatemapmod.dirstatemap.setparents(self, parent, nullid)
        for name in ('_dirs', '_alldirs', 'filefoldmap', 'dirfoldmap'):
            util.clearcachedproperty(self, name.encode('ascii'))

    def _written(self):
        """The entries the file holds: all but the implied ones."""
        m = self._map
        if m.p1 != self._parents[0]:
            self._settle(self._parents[0])
        copymap = self.copymap
        plain = [
            f for f, e in m.explicit.items()
            if e.state == b'n' and e.size != -2 and f not in copymap
        ]
        m.learn(plain)
        implied = {f for f in plain if m.inp1(f)}
        return {f: e for f, e in m.explicit.items() if f not in implied}

    def write(self, tr, st):
        kept = self._written()
        copies = {f: s for f, s in self.copymap.items() if f in kept}
        out = [parsers.pack_dirstate(kept, copies, self.parents())]
        for f in sorted(self._map.untracked):
            out.append(_ENTRY.pack(_UNTRACKED, 0, 0, 0, len(f)))
            out.append(f)
        st.write(b''.join(out))
        st.close()
        self._dirtyparents = False

    def debug_iter(self, all):
        for f, e in self._written().items():
            yield (f, e.state, e.mode, e.size, e.mtime)
        for f in self._map.untracked:
            yield (f, _UNTRACKED, 0, 0, 0)

    def _hasunder(self, d, tracked):
        m = self._map
        prefix = d + b'/' if d else b''
        excluded = []
        for f, e in m.explicit.items():
            if f.startswith(prefix):
                if e.tracked or not tracked:
                    return True
                excluded.append(f)
        excluded.extend(f for f in m.untracked if f.startswith(prefix))
        return self._files.hasfilesunder(m.p1, d, excluded)

    def hastrackeddir(self, d):
        return self._hasunder(d, True)

    def hasdir(self, d):
        return self._hasunder(d, False)

    # Case folding (only on case-insensitive file systems) and the
    # directory sets: O(files), as in hg, without the C helpers that need a
    # real dict.
    @propertycache
    def filefoldmap(self):
        normcase = util.normcase
        f = {normcase(n): n for n, s in self._map.items() if not s.removed}
        f[b'.'] = b'.'
        return f

    @propertycache
    def _dirs(self):
        return pathutil.dirs(
            [f for f, s in self._map.items() if s.tracked]
        )

    @propertycache
    def _alldirs(self):
        return pathutil.dirs(list(self._map))


def _makedirstate(dirstate, repo):
    if getattr(dirstate, '_hgvfs', False):
        return
    small = REQUIREMENT in repo.requirements
    daemon = bool(repo.ui.config(b'hgvfs', b'socket'))

    class hgvfsdirstate(dirstate.__class__):
        _hgvfs = True

        def status(self, match, subrepos, ignored, clean, unknown):
            orig = super(hgvfsdirstate, self).status
            if daemon and _usable(self, match, subrepos):
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

        if small:

            def matches(self, match):
                dmap = self._map
                if not match.always() and (
                    match.isexact() or match.prefix()
                ):
                    dmap._map.learn(match.files())
                return super(hgvfsdirstate, self).matches(match)

            def rebuild(self, parent, allfiles, changedfiles=None):
                if changedfiles is None and self._sparsematchfn is None:
                    if self._origpl is None:
                        self._origpl = self._pl
                    self._map.rebuildto(parent)
                    self._dirty = True
                    return
                return super(hgvfsdirstate, self).rebuild(
                    parent, allfiles, changedfiles
                )

    dirstate.__class__ = hgvfsdirstate
    if small:
        files = _revisionfiles(repo.ui, repo.unfiltered())
        dirstate._mapcls = lambda *args: hgvfsmap(*args, files=files)
        # A map read before this point read the file as a full dirstate.
        util.clearcachedproperty(dirstate, b'_map')


def _wrapdirstate(orig, repo):
    ds = orig(repo)
    if getattr(repo, '_hgvfsenabled', False):
        _makedirstate(ds, repo)
    return ds


# The merge actions the daemon can do itself (fs/checkout.cpp): a file got
# from the target revision, a removal, and a flag change where the mount's
# file is the target's. Any action of another kind that moves or renames paths makes
# the whole update stock hg's.
_NATIVE = (
    mergestatemod.ACTION_REMOVE,
    mergestatemod.ACTION_GET,
    mergestatemod.ACTION_EXEC,
)
_NOT_NATIVE = (
    mergestatemod.ACTION_PATH_CONFLICT,
    mergestatemod.ACTION_PATH_CONFLICT_RESOLVE,
    mergestatemod.ACTION_DIR_RENAME_MOVE_LOCAL,
    mergestatemod.ACTION_LOCAL_DIR_RENAME_GET,
)

# A checkout of many files may take the daemon longer than a status.
_CHECKOUT_TIMEOUT = 600.0


def _nativeupdate(repo):
    """(socket path, timeout) when updates in this repository may go
    through the daemon, else None."""
    ui = repo.ui
    if not getattr(repo, '_hgvfsenabled', False):
        return None
    if not ui.configbool(b'hgvfs', b'native-update'):
        return None
    reqs = repo.requirements
    if (
        requirementsmod.SPARSE_REQUIREMENT in reqs
        or requirementsmod.NARROW_REQUIREMENT in reqs
    ):
        return None
    path, timeout = _config(ui)
    if not path:
        return None
    return path, timeout


def _nativeapply(repo, mresult, wctx, mctx):
    """The plain actions of `mresult` done by the daemon: {action: [(f,
    args, msg)]} of those done (sorted by path), or None when none could be
    (stock hg then does everything)."""
    ui = repo.ui
    native = _nativeupdate(repo)
    if native is None or wctx.isinmemory() or wctx.rev() is not None:
        return None
    path, timeout = native
    if mctx.rev() is None or mctx.node() is None:
        return None  # a working copy or an in-memory commit: no tree
    if b'.hgsubstate' in mresult.files() or mresult.len(_NOT_NATIVE):
        return None
    # Grouped by action once: a MergeAction compares in Python, and a
    # comparison per file per list cost ~50 ms at 15,000 files.
    plain = {}
    for action in _NATIVE:
        acts = list(mresult.getactions([action], sort=True))
        if action is mergestatemod.ACTION_GET:
            # One that backs up what is in the way is hg's to do.
            acts = [a for a in acts if not a[1][1]]
        plain[action] = acts
    if not any(plain.values()):
        return None
    # A flag change keeps the file's own content (which may be a local
    # edit): the daemon does it only where that content is the target's.
    req = {
        'version': PROTOCOL_VERSION,
        'op': 'checkout',
        'from': hex(wctx.p1().node()).decode('ascii'),
        'to': hex(mctx.node()).decode('ascii'),
        'get': _tojson(f for f, _x, _m in plain[mergestatemod.ACTION_GET]),
        'remove': _tojson(
            f for f, _x, _m in plain[mergestatemod.ACTION_REMOVE]),
        'exec': _tojson(f for f, _x, _m in plain[mergestatemod.ACTION_EXEC]),
    }
    try:
        reply = _request(path, max(timeout, _CHECKOUT_TIMEOUT), req)
        left = set(_pathlist(reply, 'left'))
        refused = _pathlist(reply, 'refused')
    except DaemonError as e:
        # Nothing was done, or what was is done again the stock way (a
        # file got twice, a removal of what is gone: the same result).
        ui.debug(b'hgvfs: native update not used: %s\n'
                 % encoding.strtolocal(str(e)))
        return None
    if refused:
        # Something is in the way of a path (nothing was done): hg's own
        # update handles it, or stops where it stops in a normal checkout.
        ui.debug(b'hgvfs: native update refused for %d paths (%s)\n'
                 % (len(refused), refused[0]))
        return None
    done = {}
    for action, acts in plain.items():
        done[action] = [a for a in acts if a[0] not in left] if left else acts
    if ui.verbose:
        for f, _x, msg in done[mergestatemod.ACTION_REMOVE]:
            ui.debug(b' %s: %s -> r\n' % (f, msg))
            ui.note(_(b'removing %s\n') % f)
        for f, _x, msg in done[mergestatemod.ACTION_GET]:
            ui.debug(b' %s: %s -> g\n' % (f, msg))
            ui.note(_(b'getting %s\n') % f)
        if ui.debugflag:
            for f, _x, msg in done[mergestatemod.ACTION_EXEC]:
                ui.debug(b' %s: %s -> e\n' % (f, msg))
        ui.debug(
            b'hgvfs: the daemon did %d of %d actions (%d directories '
            b'swapped whole) in %d us\n'
            % (sum(map(len, done.values())), sum(map(len, plain.values())),
               reply.get('swapped', 0), reply.get('micros', 0))
        )
    return done


def _applyupdates(orig, repo, mresult, wctx, mctx, overwrite, wantfiledata,
                  **kwargs):
    """merge.applyupdates, with its plain file actions done by the daemon
    as one change of the mount's names (docs/CHECKOUT.md); what is left
    (merges, conflicts, paths in the way) is stock hg's, through the
    mount."""
    cwd = mergemod._getcwd()
    _nativestate.got = None
    done = _nativeapply(repo, mresult, wctx, mctx)
    if not done:
        return orig(repo, mresult, wctx, mctx, overwrite, wantfiledata,
                    **kwargs)
    got = [f for f, _x, _m in done[mergestatemod.ACTION_GET]]
    removed = len(done[mergestatemod.ACTION_REMOVE])
    updated = len(got) + len(done[mergestatemod.ACTION_EXEC])
    if cwd and not mergemod._getcwd() and removed:
        repo.ui.warn(
            _(b"current directory was removed\n"
              b"(consider changing to repo root: %s)\n") % repo.root
        )
    # hg's part sees only the actions the daemon did not do (its action
    # lists swapped for the call, not edited file by file).
    mapping = mresult._actionmapping
    saved = {a: mapping[a] for a in _NATIVE}
    for a, m in saved.items():
        acts = done[a]
        if len(acts) == len(m):
            mapping[a] = {}
        else:
            donefiles = {f for f, _x, _m in acts}
            mapping[a] = {f: v for f, v in m.items() if f not in donefiles}
    try:
        stats, getfiledata, extra = orig(
            repo, mresult, wctx, mctx, overwrite, wantfiledata, **kwargs
        )
    finally:
        mapping.update(saved)
    _nativestate.got = set(got)
    if wantfiledata:
        # No stat of a file the daemon made: hg records it as possibly
        # dirty, which in the mount is the implied clean entry.
        getfiledata.update(dict.fromkeys(got))
    stats = mergemod.updateresult(
        stats.updatedcount + updated,
        stats.mergedcount,
        stats.removedcount + removed,
        stats.unresolvedcount,
    )
    return stats, getfiledata, extra


# What a linear update compares: the working copy's manifest (p1's with
# the local changes), the target's, and p1's as the ancestor (for
# `update --clean`, the working copy's own manifest). A file neither
# changed locally nor between p1 and the target is the same in all three
# and gets no action, so manifests of only the other paths give hg's
# manifestmerge the very actions it would compute from whole ones; the
# daemon's trees give those entries in O(changed directories), where
# reading two whole manifests costs O(files).
_SUBREPO_FILES = (b'.hgsub', b'.hgsubstate')
_MISSING = object()


def _entrymanifests(reply, nodelen):
    """(p1's, the target's) manifestdicts of the reply's changes and
    entries, parsed from manifest text (one C parse, not a Python call per
    entry)."""
    sides = ({}, {})
    for key in ('changes', 'entries'):
        items = reply.get(key)
        if not isinstance(items, list):
            raise DaemonError('malformed reply (%s)' % key)
        try:
            for path, n1, fl1, n2, fl2 in items:
                f = path.encode('latin-1')
                for side, n, fl in ((sides[0], n1, fl1), (sides[1], n2, fl2)):
                    if n is None:
                        continue
                    if (
                        len(n) != 2 * nodelen
                        or fl not in ('', 'x', 'l')
                        or b'\n' in f
                        or b'\0' in f
                    ):
                        raise ValueError('bad entry for %r' % path)
                    side[f] = b'%s\0%s%s\n' % (
                        f, n.encode('ascii'), fl.encode('ascii'))
        except (TypeError, ValueError, UnicodeError) as e:
            raise DaemonError('malformed reply (%s: %s)' % (key, e))
    try:
        return tuple(
            manifestmod.manifestdict(
                nodelen, b''.join(side[f] for f in sorted(side)))
            for side in sides
        )
    except ValueError as e:
        raise DaemonError('malformed reply (entries: %s)' % e)


def _textmanifests(reply, nodelen):
    """(p1's, the target's) manifestdicts from a reply's manifest texts
    (revision-diff with manifest_text: the daemon writes the lines). A
    daemon from before manifest_text answers with the lists instead."""
    if 'from_manifest' not in reply and 'changes' in reply:
        return _entrymanifests(reply, nodelen)
    texts = []
    for key in ('from_manifest', 'to_manifest'):
        text = reply.get(key)
        if not isinstance(text, str):
            raise DaemonError('malformed reply (%s)' % key)
        try:
            texts.append(text.encode('latin-1'))
        except UnicodeError as e:
            raise DaemonError('malformed reply (%s: %s)' % (key, e))
    try:
        return tuple(manifestmod.manifestdict(nodelen, t) for t in texts)
    except ValueError as e:
        raise DaemonError('malformed reply (manifest text: %s)' % e)


def _restrictedmanifests(repo, wctx, mctx, ancestors, branchmerge,
                         followcopies, matcher):
    """{ctx: manifest} restricted to the paths that can get actions in a
    linear update of a mount, or None where hg's own manifests are needed."""
    ui = repo.ui
    native = _nativeupdate(repo)
    if (
        native is None
        or branchmerge
        or followcopies  # copy tracing reads whole manifests
        or len(ancestors) != 1
        or (matcher is not None and not matcher.always())
        or wctx.rev() is not None
        or wctx.isinmemory()
        or len(wctx.parents()) != 1
        or mctx.rev() is None
        or mctx.node() is None
        or ui.configbool(b'experimental', b'merge.checkpathconflicts')
    ):
        return None
    p1, pa = wctx.p1(), ancestors[0]
    # The ancestor is p1, or for `update --clean` the working copy itself.
    if pa is not wctx and pa.node() != p1.node():
        return None
    path, timeout = native
    st = wctx._status
    local = st.modified + st.added + st.removed + st.deleted
    req = {
        'version': PROTOCOL_VERSION,
        'op': 'revision-diff',
        'from': hex(p1.node()).decode('ascii'),
        'to': hex(mctx.node()).decode('ascii'),
        'entries': True,
        'manifest_text': True,
        'paths': _tojson(list(_SUBREPO_FILES) + local),
    }
    try:
        reply = _request(path, max(timeout, _CHECKOUT_TIMEOUT), req)
        ma, m2 = _textmanifests(reply, len(p1.node()))
    except DaemonError as e:
        ui.debug(b'hgvfs: whole manifests for the update: %s\n'
                 % encoding.strtolocal(str(e)))
        return None
    if any(f in ma or f in m2 for f in _SUBREPO_FILES):
        return None  # subrepositories: hg's own path
    # The working copy's manifest, as workingctx._buildstatusmanifest
    # makes it from p1's.
    m1 = ma.copy()
    ff = wctx._flagfunc
    for node, files in (
        (repo.nodeconstants.addednodeid, st.added),
        (repo.nodeconstants.modifiednodeid, st.modified),
    ):
        for f in files:
            m1[f] = node
            try:
                m1.setflag(f, ff(f))
            except OSError:
                pass
    for f in st.deleted + st.removed:
        if f in m1:
            del m1[f]
    ui.debug(
        b'hgvfs: manifests of %d paths from the daemon (%d us)\n'
        % (len(m1) + len(m2), reply.get('micros', 0))
    )
    if pa is wctx:
        return [(wctx, m1), (mctx, m2), (p1, ma)]
    return [(wctx, m1), (mctx, m2), (pa, ma), (p1, ma)]


def _calculateupdates(orig, repo, wctx, mctx, ancestors, branchmerge, force,
                      acceptremote, followcopies, matcher=None,
                      mergeforce=False):
    """merge.calculateupdates of a linear update in a mount, fed manifests
    of only the paths that can get actions (see above); stock otherwise."""
    restricted = _restrictedmanifests(repo, wctx, mctx, ancestors,
                                      branchmerge, followcopies, matcher)
    saved = []
    for ctx, m in restricted or ():
        if all(ctx is not c for c, _m in saved):
            saved.append((ctx, ctx.__dict__.get('_manifest', _MISSING)))
        ctx.__dict__['_manifest'] = m
    try:
        return orig(repo, wctx, mctx, ancestors, branchmerge, force,
                    acceptremote, followcopies, matcher=matcher,
                    mergeforce=mergeforce)
    finally:
        # Later readers (a merge's file contexts, hooks) see whole
        # manifests again.
        for ctx, m in saved:
            if m is _MISSING:
                ctx.__dict__.pop('_manifest', None)
            else:
                ctx.__dict__['_manifest'] = m


# While merge._checkunknownfiles runs for a mount: the untracked files
# (unknown and ignored) and their directories, from the daemon. A file the
# update creates can only collide with one of those, so the others need no
# lstat through the mount each (the answer is the same: no conflict).
class _untrackedstate:
    files = None
    dirs = None


def _checkunknownfiles(orig, repo, wctx, mctx, force, mresult, mergeforce):
    created = (mergestatemod.ACTION_CREATED,
               mergestatemod.ACTION_DELETED_CHANGED)
    ds = repo.dirstate
    if (
        force
        or wctx.isinmemory()
        or not getattr(repo, '_hgvfsenabled', False)
        or not getattr(ds, '_hgvfs', False)
        or not _config(repo.ui)[0]
        # Below this many files to create, hg's own checks cost less.
        or mresult.len(created)
        < repo.ui.configint(b'hgvfs', b'untracked-check-after')
    ):
        return orig(repo, wctx, mctx, force, mresult, mergeforce)
    match = scmutil.matchall(repo)
    st = None
    if _usable(ds, match, []):
        st = _daemonstatus(ds, match, True, False, True)
    if st is None:
        return orig(repo, wctx, mctx, force, mresult, mergeforce)
    files = set(st.unknown) | set(st.ignored)
    _untrackedstate.files = files
    _untrackedstate.dirs = set(pathutil.dirs(files)) if files else set()
    try:
        return orig(repo, wctx, mctx, force, mresult, mergeforce)
    finally:
        _untrackedstate.files = _untrackedstate.dirs = None


def _checkunknownfile(orig, repo, wctx, mctx, f, f2=None):
    files = _untrackedstate.files
    if files is not None and f not in files:
        return False  # no untracked file there: nothing to compare
    return orig(repo, wctx, mctx, f, f2)


def _checkunknowndirs(orig, self, repo, wctx, f):
    files = _untrackedstate.files
    if (
        files is not None
        and f not in _untrackedstate.dirs
        and not any(d in files for d in pathutil.finddirs(f))
    ):
        return None  # no untracked file above f, nor below it
    return orig(self, repo, wctx, f)


# The files the daemon got in the update under way (_applyupdates), for
# _recordupdates.
class _nativestate:
    got = None


def _recordupdates(orig, repo, actions, branchmerge, getfiledata):
    """mergestate.recordupdates, with every path it will touch asked of
    the new p1 at once (one request) instead of one by one; a file the
    daemon got, which hg would record as possibly dirty, is left out where
    the mount's dirstate already implies exactly that (a file of the new p1
    with no entry of its own)."""
    got, _nativestate.got = _nativestate.got, None
    ds = repo.dirstate
    if getattr(ds, '_hgvfs', False) and isinstance(ds._map, hgvfsmap):
        lazy = ds._map._map
        # (A file the daemon got is the new p1's: nothing to ask.)
        lazy.learn(
            [f for acts in actions.values() for f, _args, _msg in acts
             if not got or f not in got]
        )
        gets = actions.get(mergestatemod.ACTION_GET)
        if got and gets and not branchmerge:
            explicit, untracked = lazy.explicit, lazy.untracked

            def implied(f):
                return (
                    f in got
                    and f not in explicit
                    and f not in untracked
                    and not (getfiledata and getfiledata.get(f))
                )

            actions = dict(actions)
            actions[mergestatemod.ACTION_GET] = [
                a for a in gets if not implied(a[0])
            ]
    return orig(repo, actions, branchmerge, getfiledata)


# hg's manifest fulltext cache, in a mount (flat manifests only).
#
# Stock hg keeps the fulltexts of the last 4 manifests it used in
# .hg/wcache/manifestfulltextcache and rewrites the whole file whenever a
# command that took the lock used another one: at a million files that is
# 300 MB read by every command that reads a manifest and 300 MB written by
# every commit. A commit needs its first parent's fulltext to write the
# new manifest as a delta (manifestrevlog.add, "fastdelta").
#
# The mount keeps one fulltext instead, .hg/wcache/hgvfs-manifest, and
# makes the fulltext of any manifest whose delta chain in the revlog
# passes through it from that file and the few stored deltas after it
# (what the revlog itself does from its chain base, minus decompressing
# the base). A commit adds one delta to that chain, so the file is
# rewritten only when the working copy's manifest is not reachable from
# it in a few deltas (the first commit of a mount, after an update to an
# unrelated revision, every _CHAIN_MAX commits).
#
# The file: magic, node (20 bytes), text length (8 bytes, big-endian),
# text. A text made from it must have the length the revlog's index
# records, or it is not used. Like stock hg's cache file, its content is
# trusted: it is written (atomically) only from a text this process
# hashed into its node or read from the revlog.
_BASE_FILE = b'hgvfs-manifest'
_BASE_MAGIC = b'HGVFSMF1'
_BASE_HEADER = struct.Struct(b'>8s20sQ')
_CHAIN_MAX = 64


class _mountmanifestcache(manifestmod.manifestfulltextcache):
    def __init__(self, max, store):
        super().__init__(max)
        self._store = weakref.ref(store)
        self._base = None  # (node, text) once read; False: none usable
        self._newest = None  # the last text set, persisted by write()
        # Manifests written by this process: node -> (p1's node,
        # {path: flags, or None when the manifest dropped the path}).
        self.made = {}
        # The repository, for the working copy's parent (a weak
        # reference: the repository holds this cache).
        self._repo = None

    def read(self):
        # The stock file is not read in a mount.
        self._read = True

    def _loadbase(self):
        """(node, text as a buffer) of the file, or False. The text is
        mapped, not read: what is made from it is a copy anyway (the
        file is only ever replaced by a rename, never written in place)."""
        if self._base is None:
            self._base = False
            if self._opener is None:
                return False
            try:
                with self._opener(_BASE_FILE) as fp:
                    head = fp.read(_BASE_HEADER.size)
                    if len(head) != _BASE_HEADER.size:
                        return False
                    magic, node, size = _BASE_HEADER.unpack(head)
                    end = _BASE_HEADER.size + size
                    if (
                        magic != _BASE_MAGIC
                        or os.fstat(fp.fileno()).st_size != end
                    ):
                        return False
                    if size == 0:
                        self._base = (node, b'')
                    else:
                        mapped = mmap.mmap(
                            fp.fileno(), 0, access=mmap.ACCESS_READ
                        )
                        self._base = (
                            node,
                            memoryview(mapped)[_BASE_HEADER.size:end],
                        )
            except (IOError, ValueError):
                pass
        return self._base

    def _chain(self, node):
        """The revisions whose deltas lead from the base file's text to
        `node`'s, or None."""
        base = self._loadbase()
        store = self._store()
        if not base or store is None:
            return None
        rl = store._revlog
        rev = rl.index.get_rev(node)
        baserev = rl.index.get_rev(base[0])
        if rev is None or baserev is None or rev < baserev:
            return None
        if rev == baserev:
            return []
        chain, stopped = rl._deltachain(rev, stoprev=baserev)
        if not stopped or len(chain) > _CHAIN_MAX:
            return None
        if any(rl.flags(r) for r in chain):
            return None
        return chain

    def _make(self, node):
        chain = self._chain(node)
        if chain is None:
            return None
        text = self._base[1]
        if not chain:
            return bytes(text)
        rl = self._store()._revlog
        text = mdiff.patches(text, rl._chunks(chain))
        expected = rl.index[chain[-1]][2]
        if 0 <= expected and len(text) != expected:
            return None
        return text

    def __contains__(self, k):
        return (
            util.lrucachedict.__contains__(self, k)
            or self._chain(k) is not None
        )

    def __getitem__(self, k):
        if util.lrucachedict.__contains__(self, k):
            return super().__getitem__(k)
        text = self._make(k)
        if text is None:
            raise KeyError(k)
        util.lrucachedict.__setitem__(self, k, text)
        return text

    def get(self, k, default=None):
        try:
            return self[k]
        except KeyError:
            return default

    def __setitem__(self, k, v):
        super().__setitem__(k, v)
        self._newest = k

    def write(self):
        newest, self._newest = self._newest, None
        if newest is None or self._opener is None:
            return
        if self._chain(newest) is not None:
            return  # the file still leads to it
        entry = self._cache.get(newest)
        if entry is None:
            return
        text = entry.value
        try:
            with self._opener(
                _BASE_FILE, b'w', atomictemp=True, checkambig=True
            ) as fp:
                fp.write(_BASE_HEADER.pack(_BASE_MAGIC, newest, len(text)))
                fp.write(text)
        except IOError:
            return  # a cache: the next command rebuilds it
        self._base = None  # mapped again when next needed
        # Stock hg's file, from before the mount had this cache (or from a
        # Mercurial without the extension): never read here, 300 MB at a
        # million files.
        self._opener.tryunlink(manifestmod.manifestfulltextcache._file)

    def keepworkingparent(self, node):
        """Writes the file now, outside any lock, when `node`'s text was
        just read from the revlog and is the working copy's parent's
        manifest and no lock is held. Commands that take no lock (diff,
        cat, annotate) would otherwise never keep it, and each would read and hash the whole
        manifest from the revlog again; a normal checkout has stock hg's
        file from its last update or commit. Written by rename, like
        write(): a concurrent writer's file is as valid as this one."""
        if self._newest != node or self._opener is None:
            return
        repo = self._repo() if self._repo is not None else None
        if repo is None:
            return
        if (
            repo.currentwlock() is not None
            or repo._currentlock(repo._lockref) is not None
        ):
            return  # written when the lock is released (write())
        try:
            p1 = repo.dirstate.p1()
            if p1 == nullid:
                return
            cl = repo.unfiltered().changelog
            if cl.changelogrevision(p1).manifest != node:
                return
        except (error.LookupError, error.RepoLookupError, IOError):
            return
        self.write()

    def clear(self, clear_persisted_data=False):
        super().clear(clear_persisted_data=False)
        self._base = None
        self._newest = None
        if clear_persisted_data and self._opener is not None:
            self._opener.tryunlink(_BASE_FILE)


def _manifestread(orig, self):
    """manifestctx.read of a manifest the mount's cache has: parsed from
    the cache's text itself (stock copies it into a bytestr first, 76 MB
    at a million files, for the same bytes)."""
    if self._data is None:
        store = self._storage()
        cache = store.fulltextcache
        if (
            isinstance(cache, _mountmanifestcache)
            and self._node != nullid
            and self._node in cache
        ):
            text = cache[self._node]
            if type(text) is not bytes:
                text = bytes(text)
            nodelen = self._manifestlog.nodeconstants.nodelen
            self._data = manifestmod.manifestdict(nodelen, text)
            return self._data
        data = orig(self)
        if isinstance(cache, _mountmanifestcache):
            cache.keepworkingparent(self._node)
        return data
    return orig(self)


def _addlistdelta(orig, addlist, x):
    """manifest._addlistdelta (the new text and the revlog delta of a
    fastdelta): the same bytes, the new text made in one copy (stock grows
    a bytearray slice by slice, 76 MB at a million files); as bytes, which
    every reader of the text takes as it takes stock's bytearray."""
    source = memoryview(addlist)
    parts = []
    current = 0
    for start, end, content in x:
        parts.append(source[current:start])
        parts.append(content)
        current = end
    parts.append(source[current:])
    deltatext = b''.join(
        struct.pack(b'>lll', start, end, len(content)) + content
        for start, end, content in x
    )
    return deltatext, b''.join(parts)


def _setupmanifestcachehooks(orig, self, repo):
    if (
        getattr(repo, '_hgvfsenabled', False)
        and not self._treeondisk
        and not self.tree
        and not isinstance(self._fulltextcache, _mountmanifestcache)
    ):
        old = self._fulltextcache
        self._fulltextcache = _mountmanifestcache(old.capacity, self)
        self._fulltextcache._repo = weakref.ref(repo)
    return orig(self, repo)


_stockaddrevision = revlogmod.revlog.addrevision


def _addrevision(rl, text, tr, link, p1, p2, cachedelta):
    """rl.addrevision(text, ...) with no flags, hashing the text once:
    stock addrevision hashes it twice (the node, then checkhash of that
    node against the same text) and compares it with itself, 0.65 s for a
    76 MB manifest. Stock's own call where anything may differ."""
    if (
        getattr(rl.addrevision, '__func__', None) is not _stockaddrevision
        or link == nullrev
        or len(text) > revlogmod._maxentrysize
    ):
        return rl.addrevision(text, tr, link, p1, p2, cachedelta)
    node = rl.hash(text, p1, p2)
    rev = rl.index.get_rev(node)
    if rev is not None:
        return rev
    return rl.addrawrevision(
        text, tr, link, p1, p2, node, 0, cachedelta=cachedelta, sidedata={}
    )


def _manifestadd(orig, self, m, transaction, link, p1, p2, added, removed,
                 readtree=None, match=None):
    """manifestrevlog.add in a mount: the same delta and text as stock
    fastdelta (from the mount's cache), the text hashed once; and a record
    of what changed, for the dirstate map (_revisionfiles._madehere)."""
    cache = self._fulltextcache
    if (
        not isinstance(cache, _mountmanifestcache)
        or not isinstance(m, manifestmod.manifestdict)
    ):
        return orig(self, m, transaction, link, p1, p2, added, removed,
                    readtree=readtree, match=match)
    if p1 in cache:
        manifestmod._checkforbidden(added)
        work = heapq.merge(
            [(x, False) for x in sorted(added)],
            [(x, True) for x in sorted(removed)],
        )
        arraytext, deltatext = m.fastdelta(cache[p1], work)
        rl = self._revlog
        cachedelta = rl.rev(p1), deltatext
        rev = _addrevision(rl, util.buffer(arraytext), transaction, link,
                           p1, p2, cachedelta)
        n = rl.node(rev)
        cache[n] = arraytext
    else:
        n = orig(self, m, transaction, link, p1, p2, added, removed,
                 readtree=readtree, match=match)
    changes = dict.fromkeys(removed)
    for f in added:
        changes[f] = m.flags(f)
    cache.made[n] = (p1, changes)
    return n


def featuresetup(ui, supported):
    supported.add(REQUIREMENT)


localrepo.featuresetupfuncs.add(featuresetup)


def extsetup(ui):
    extensions.wrapfilecache(
        localrepo.localrepository, b'dirstate', _wrapdirstate
    )
    extensions.wrapfunction(mergemod, 'calculateupdates', _calculateupdates)
    extensions.wrapfunction(mergemod, 'applyupdates', _applyupdates)
    extensions.wrapfunction(mergestatemod, 'recordupdates', _recordupdates)
    extensions.wrapfunction(mergemod, '_checkunknownfiles', _checkunknownfiles)
    extensions.wrapfunction(mergemod, '_checkunknownfile', _checkunknownfile)
    extensions.wrapfunction(
        mergemod._unknowndirschecker, '__call__', _checkunknowndirs
    )
    extensions.wrapfunction(
        manifestmod.manifestrevlog, '_setupmanifestcachehooks',
        _setupmanifestcachehooks,
    )
    extensions.wrapfunction(manifestmod.manifestrevlog, 'add', _manifestadd)
    extensions.wrapfunction(manifestmod.manifestctx, 'read', _manifestread)
    extensions.wrapfunction(manifestmod, '_addlistdelta', _addlistdelta)


def reposetup(ui, repo):
    if not repo.local():
        return
    if not (
        REQUIREMENT in repo.requirements
        or repo.ui.config(b'hgvfs', b'socket')
    ):
        return
    repo._hgvfsenabled = True
    ds, cached = localrepo.isfilecached(repo, b'dirstate')
    if cached:
        _makedirstate(ds, repo)

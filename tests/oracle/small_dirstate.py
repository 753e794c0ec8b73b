#!/usr/bin/python3
"""Turns a normal checkout into one whose .hg/dirstate is in the mount's
format (docs/DIRSTATE.md) and enables the hgvfs extension there, with no
daemon: the extension then answers implied paths from p1's manifest. Tests
use it to check the extension's dirstate map against stock hg without a
mount.

Usage: small_dirstate.py CHECKOUT EXTENSION_PATH
"""

import struct
import sys

from mercurial import hg, ui as uimod

ENTRY = struct.Struct('>cllll')


def main():
    root, ext = sys.argv[1].encode(), sys.argv[2]
    repo = hg.repository(uimod.ui.load(), root)
    ds = repo.dirstate
    p1 = ds.p1()
    m = repo[p1].manifest() if p1 != b'\0' * 20 else {}
    copies = ds.copies()
    out = [b''.join(ds.parents())]
    listed = set()
    for f, e in sorted(ds._map.items()):
        listed.add(f)
        if e.state == b'n' and e.size != -2 and f not in copies and f in m:
            continue  # implied
        name = f + (b'\0' + copies[f] if f in copies else b'')
        out.append(ENTRY.pack(e.state, e.mode, e.size, e.mtime, len(name)) + name)
    for f in sorted(set(m) - listed):
        out.append(ENTRY.pack(b'u', 0, 0, 0, len(f)) + f)
    repo.vfs.write(b'dirstate', b''.join(out))
    requires = repo.vfs.read(b'requires')
    if b'hgvfs-dirstate\n' not in requires:
        repo.vfs.write(b'requires', requires + b'hgvfs-dirstate\n')
    with repo.vfs(b'hgrc', b'ab') as f:
        f.write(b'[extensions]\nhgvfs = %s\n' % ext.encode())


if __name__ == '__main__':
    main()

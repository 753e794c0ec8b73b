#!/usr/bin/python3
"""Oracle for hgbridge/dirstate.cpp: what Mercurial's own parser makes of a
dirstate-v1 file, and what hg writes back for it.

Run with the system Python that has Mercurial (/usr/bin/python3).

Usage: dirstate_dump.py FILE   (FILE holds the bytes of a .hg/dirstate)

Output (stdout), one record a line, paths in hex so any byte survives:

  parents <p1 hex> <p2 hex>
  entry <state> <mode> <size> <mtime> <path hex> <copy source hex or ->
  ...                          (dict order: the file's order, duplicates
                                collapsed as Python's dict does)
  repack <hex of pack_dirstate(the parsed map, copies, parents)>

or, when the parser refuses the file, the single line "error <class name>".

The fields are DirstateItem's v1 view (state, mode, size, mtime), i.e.
what hg would write for the entry. The C parser (what hg runs here) gives
the answer; when it accepts the file, mercurial/pure/parsers.py must agree
with it (else exit 1, message on stderr). The pure parser is laxer about
truncated names, so it is not asked about files the C parser refuses.
"""

import sys

from mercurial import policy
from mercurial.pure import parsers as pure

cparsers = policy.importmod("parsers")


def dump(parsers, data):
    dmap, copymap = {}, {}
    try:
        parents = parsers.parse_dirstate(dmap, copymap, data)
    except Exception as e:  # noqa: BLE001 - refusing the file is a result
        return ["error %s" % type(e).__name__]
    lines = ["parents %s %s" % (parents[0].hex(), parents[1].hex())]
    for path, item in dmap.items():
        copy = copymap.get(path)
        lines.append(
            "entry %s %d %d %d %s %s"
            % (
                item.state.decode(),
                item.mode,
                item.size,
                item.mtime,
                path.hex(),
                copy.hex() if copy is not None else "-",
            )
        )
    packed = parsers.pack_dirstate(dmap, copymap, tuple(parents))
    lines.append("repack %s" % packed.hex())
    return lines


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    if not data:
        # dirstatemap.parents: an empty (or missing) file is null parents;
        # parse_dirstate itself is never called on it.
        null = "00" * 20
        print("parents %s %s" % (null, null))
        print("repack %s" % bytes(40).hex())
        return 0
    c = dump(cparsers, data)
    p = None if c[0].startswith("error") else dump(pure, data)
    if p is not None and p != c:
        sys.stderr.write("C and pure parsers disagree:\n%s\n--\n%s\n" % (c, p))
        return 1
    sys.stdout.write("\n".join(c) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Oracle for hgbridge/store_path.cpp: Mercurial's own store path encodings.

Run with the system Python that has Mercurial (/usr/bin/python3).

Input (the file named by the first argument, else stdin): store paths, each
terminated by one NUL byte.
Output (stdout): for every input path, in order, four fields, each
terminated by one NUL byte:

  1. basic      store.encodefilename(p)    ("store" without "fncache";
                                             encodefilename applies encodedir)
  2. fncache    store._hybridencode(p, False)
  3. dotencode  store._hybridencode(p, True)
  4. pathencode store._pathencode(p)       (the C version when it is built,
                                             what hg really uses for dotencode)

A field whose function raised is written as "\\x01" followed by the
exception's class name. No encoding can contain "\\x01" (control bytes are
always escaped as ~01), nor a NUL, so the format is unambiguous.

The script also checks Mercurial against itself and exits 1 (with the
offending paths on stderr) if the C pathencode disagrees with the pure
Python _hybridencode(p, True), or the C encodedir / lowerencode disagree
with their Python definitions, on any path where the Python did not raise.
"""

import sys

from mercurial import store

ERROR_MARK = b"\x01"


def attempt(fn, *args):
    try:
        return fn(*args), None
    except Exception as e:  # noqa: BLE001 - any failure is a result here
        return None, ERROR_MARK + type(e).__name__.encode()


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], "rb") as f:
            data = f.read()
    else:
        data = sys.stdin.buffer.read()
    paths = data.split(b"\0")
    if paths and paths[-1] == b"":
        paths.pop()  # the terminator of the last path

    pure_lower = store._buildlowerencodefun()
    problems = []
    out = []
    for p in paths:
        basic, basic_err = attempt(store.encodefilename, p)
        plain, plain_err = attempt(store._hybridencode, p, False)
        dot, dot_err = attempt(store._hybridencode, p, True)
        c, c_err = attempt(store._pathencode, p)
        if dot_err is None and c != dot:
            problems.append(b"pathencode %r: C %r, Python %r" % (p, c, dot))
        if store.encodedir(p) != store._encodedir(p):
            problems.append(b"encodedir %r" % p)
        if store.lowerencode(p) != pure_lower(p):
            problems.append(b"lowerencode %r" % p)
        for value, err in ((basic, basic_err), (plain, plain_err), (dot, dot_err), (c, c_err)):
            out.append(err if err is not None else value)
            out.append(b"\0")

    sys.stdout.buffer.write(b"".join(out))
    sys.stdout.buffer.flush()
    if problems:
        sys.stderr.buffer.write(b"\n".join(problems[:20]) + b"\n")
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Oracle for hgbridge/mpatch.cpp: deltas made and applied by Mercurial.

Run with the system Python that has Mercurial (/usr/bin/python3).

  mpatch_cases.py chains SEED COUNT OUT
      COUNT delta chains. For each: a random text0, then 1..50 edits
      text0 -> text1 -> ... -> textN, each delta made by
      mercurial.mdiff.textdiff (bdiff). Written to OUT as, per chain:
        u32 N+1, then N+1 texts, then N deltas
      where each text or delta is u32 length + bytes (u32 big-endian).
      Checks first that Mercurial's C mpatch (mdiff.patches) and the pure
      Python mpatch both turn text0 + deltas into textN, and that every
      prefix of the chain gives the matching text.

  mpatch_cases.py single SEED COUNT OUT
      COUNT (base, delta) pairs where the delta is often damaged
      (truncated, bytes flipped, fields set to huge values, hunks swapped,
      garbage appended). Per pair: base, delta (u32 length + bytes each),
      then u8 1 and the patched text (u32 length + bytes) when Mercurial's C
      mpatch applies it, or u8 0 when it raises mpatchError.

Exits 1 with a message on stderr if Mercurial disagrees with itself.
"""

import random
import struct
import sys

from mercurial import mdiff
from mercurial.pure import mpatch as pure_mpatch

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"{", b"}", b"return x;", b"",
         b"    if (a < b) {", b"#include <x>", b"\t", b"caf\xc3\xa9", b"\xff\xfe",
         b"\x00\x01", b"line", b"same", b"same", b"same"]


def u32(n):
    return struct.pack(">I", n)


def blob(b):
    return u32(len(b)) + b


def random_line(rng):
    return b" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6))) + b"\n"


def random_binary(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def random_text(rng):
    kind = rng.random()
    if kind < 0.05:
        return b""
    if kind < 0.15:
        return random_binary(rng, rng.randint(1, 400))
    lines = [random_line(rng) for _ in range(rng.randint(1, 120))]
    text = b"".join(lines)
    if rng.random() < 0.2:
        text = text[:-1]  # no newline at the end
    return text


def edit(rng, text):
    """One step of a chain: a few line edits, sometimes something drastic."""
    r = rng.random()
    if r < 0.03:
        return b""
    if r < 0.06:
        return random_text(rng)
    if r < 0.10:
        return text  # an empty delta
    if r < 0.15 and text:
        # A byte-level edit inside a line (or a binary text).
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(0, 20))
        return text[:i] + random_binary(rng, rng.randint(0, 10)) + text[j:]
    lines = text.splitlines(True)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        pos = rng.randint(0, len(lines))
        if op == 0:
            lines[pos:pos] = [random_line(rng) for _ in range(rng.randint(1, 8))]
        elif op == 1:
            del lines[pos:pos + rng.randint(1, 10)]
        elif op == 2:
            lines[pos:pos + rng.randint(1, 5)] = [random_line(rng)
                                                  for _ in range(rng.randint(0, 5))]
        elif op == 3 and lines:
            a = rng.randrange(len(lines))
            lines[pos:pos] = lines[a:a + rng.randint(1, 10)]
        else:
            lines.append(random_line(rng))
    return b"".join(lines)


def chains(rng, count, problems):
    out = []
    for _ in range(count):
        texts = [random_text(rng)]
        for _ in range(rng.randint(1, 50)):
            texts.append(edit(rng, texts[-1]))
        deltas = [mdiff.textdiff(a, b) for a, b in zip(texts, texts[1:])]
        for k in range(1, len(texts)):
            if mdiff.patches(texts[0], deltas[:k]) != texts[k]:
                problems.append("C mpatch disagrees with bdiff at step %d" % k)
        if pure_mpatch.patches(texts[0], deltas) != texts[-1]:
            problems.append("pure mpatch disagrees with bdiff")
        out.append(u32(len(texts)))
        out.extend(blob(t) for t in texts)
        out.extend(blob(d) for d in deltas)
    return b"".join(out)


def hunks_of(delta):
    pos, hunks = 0, []
    while pos + 12 <= len(delta):
        s, e, n = struct.unpack(">III", delta[pos:pos + 12])
        hunks.append((s, e, delta[pos + 12:pos + 12 + n]))
        pos += 12 + n
    return hunks


def pack(hunks):
    return b"".join(struct.pack(">III", s, e, len(d)) + d for s, e, d in hunks)


def damage(rng, base, delta):
    r = rng.randrange(10)
    if r == 0:  # left intact
        return delta
    if r == 1 and delta:  # truncated anywhere
        return delta[:rng.randrange(len(delta))]
    if r == 2 and delta:  # one byte changed
        i = rng.randrange(len(delta))
        return delta[:i] + bytes([rng.randrange(256)]) + delta[i + 1:]
    if r == 3:  # garbage appended
        return delta + random_binary(rng, rng.randint(1, 16))
    hunks = hunks_of(delta)
    if not hunks:
        hunks = [(0, 0, b"x")]
    i = rng.randrange(len(hunks))
    s, e, d = hunks[i]
    huge = rng.choice([len(base) + 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                       0xFFFFFFF4, len(base) + rng.randint(2, 100)])
    if r == 4:
        hunks[i] = (huge, e, d)
    elif r == 5:
        hunks[i] = (s, huge, d)
    elif r == 6:  # start > end
        hunks[i] = (e + 1, e, d)
    elif r == 7 and len(hunks) > 1:  # out of order
        j = rng.randrange(len(hunks))
        hunks[i], hunks[j] = hunks[j], hunks[i]
    elif r == 8:  # overlapping the previous hunk
        hunks.insert(i, (s, e, d))
    else:  # a length field claiming more data than there is
        packed = pack(hunks)
        off = 0
        for h in hunks[:i]:
            off += 12 + len(h[2])
        return packed[:off + 8] + u32(huge) + packed[off + 12:]
    return pack(hunks)


def single(rng, count):
    out = []
    for _ in range(count):
        base = random_text(rng)
        delta = damage(rng, base, mdiff.textdiff(base, edit(rng, base)))
        out.append(blob(base) + blob(delta))
        try:
            result = mdiff.patches(base, [delta])
        except Exception:  # mpatchError, or ValueError on some inputs
            out.append(b"\x00")
        else:
            out.append(b"\x01" + blob(result))
    return b"".join(out)


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("chains", "single"):
        sys.stderr.write("usage: mpatch_cases.py chains|single SEED COUNT OUT\n")
        sys.exit(2)
    mode, seed, count, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = random.Random(seed)
    problems = []
    data = chains(rng, count, problems) if mode == "chains" else single(rng, count)
    with open(path, "wb") as f:
        f.write(data)
    if problems:
        sys.stderr.write("\n".join(problems[:20]) + "\n")
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# A loop of 4 KiB pwrites into one file: usage FILE COUNT LABEL (docs/BENCHMARKS.md,
# "Extended attributes and writes").
import os, sys, time
p = sys.argv[1]; n = int(sys.argv[2])
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
buf = b"x" * 4096
t = time.perf_counter()
for i in range(n):
    os.pwrite(fd, buf, (i % 256) * 4096)
dt = time.perf_counter() - t
os.close(fd)
print(f"{sys.argv[3]}: {n} x 4 KiB pwrite: {dt:.3f} s, {n/dt:,.0f} writes/s")

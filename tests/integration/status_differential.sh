#!/usr/bin/env bash
# Differential status test: `hg status -A -C` (with the hgvfs extension and
# without it) and `hgvfs status -A -C` in a mount against `hg status` in a
# normal checkout, after every step of seeded random operations applied to
# both. See status_differential.py for what it does and its environment
# (HGVFS_STATUS_SEEDS, HGVFS_STATUS_STEPS, HGVFS_STATUS_SEED,
# HGVFS_STATUS_NO_MOUNT, HGVFS_STATUS_PERTURB, ...).
#
# Usage: bash tests/integration/status_differential.sh /path/to/hgvfs
# The default size (3 seeds x 40 steps) takes about 3 minutes on 2 cores;
# scripts/status-soak runs it long.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 /path/to/hgvfs" >&2; exit 2; }
exec /usr/bin/python3 "$(dirname "$0")/status_differential.py" "$1" \
  "${HGVFS_STATUS_SEEDS:-3}" "${HGVFS_STATUS_STEPS:-40}"

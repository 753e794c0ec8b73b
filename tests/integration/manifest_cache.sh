#!/usr/bin/env bash
# The mount's manifest cache and one-hash manifest write (hgext/hgvfs.py)
# against stock hg: the same commits in a clone with the extension and a
# plain one must give the same nodes; no mount needed. See manifest_cache.py
# (HGVFS_MFCACHE_PERTURB=1 must make it fail).
#
# Usage: bash tests/integration/manifest_cache.sh [/path/to/hgvfs]   (the
# argument, passed by CTest, is not used)
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/manifest_cache.py"

#!/usr/bin/env bash
# The Mercurial extension (hgext/hgvfs.py) against a stub daemon; no
# mount needed. See hgext_test.py.
#
# Usage: bash tests/integration/hgext_test.sh [/path/to/hgvfs]   (the argument,
# passed by CTest, is not used)
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/hgext_test.py"

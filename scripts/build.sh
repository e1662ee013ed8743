#!/usr/bin/env bash
# Configure and build writ into build/ (or $WRIT_BUILD_DIR). Used by run.sh, test.sh and bench.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WRIT_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${WRIT_BUILD_TYPE:-RelWithDebInfo}" ${WRIT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"

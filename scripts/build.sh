#!/usr/bin/env bash
# Configure and build writ into build/ (or $WRIT_BUILD_DIR). Used by run.sh, test.sh and scripts/bench/.
# Arguments name the targets to build (run.sh: writd writ); none builds everything (tests included).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WRIT_BUILD_DIR:-$root/build}"
launcher=()
# ccache is optional: a developer machine with several worktrees rebuilds far less; CI has no cache to hit.
if command -v ccache >/dev/null; then launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${WRIT_BUILD_TYPE:-RelWithDebInfo}" "${launcher[@]}" ${WRIT_CMAKE_ARGS:-} >/dev/null
targets=()
(($#)) && targets=(--target "$@")
cmake --build "$build" -j"$(nproc)" "${targets[@]}"

#!/usr/bin/env bash
# Fresh machine -> running writd: install dependencies, build, start writd with the default config
# from policies/. Extra arguments go to writd (e.g. --mode enforce, --events -).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" writd writ  # what it runs; scripts/test.sh builds the tests too
exec "$root/build/bin/writd" --config "$root/policies/writd.yaml" "$@"

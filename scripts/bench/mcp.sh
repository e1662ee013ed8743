#!/usr/bin/env bash
# MCP gateway bench (issue 18; docs/performance.md, "MCP gateway"): per-call latency and calls/s of a
# tool call through `writ run --mcp` (writd judging each call) and on a direct stdio connection, small
# and 1 MiB arguments, in one run. Root. Exit 77 = cannot run here.
#   scripts/bench/mcp.sh [--calls N] [--big N] [--rounds N] [--no-build]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build="${WRIT_BUILD_DIR:-$root/build}"
args=()
build_first=1
for a in "$@"; do if [[ "$a" == --no-build ]]; then build_first=0; else args+=("$a"); fi; done
((build_first)) && nice -n 10 "$root/scripts/build.sh" writd writ >/dev/null
agents="$root/tests/e2e/agents"
if [[ ! -d "$agents/node_modules/@modelcontextprotocol/sdk" ]]; then
  (cd "$agents" && npm ci --no-audit --no-fund >/dev/null) || { echo "SKIP: npm ci failed"; exit 77; }
fi
exec node "$agents/bench_mcp.mjs" --writd "$build/bin/writd" --writ "$build/bin/writ" "${args[@]}"

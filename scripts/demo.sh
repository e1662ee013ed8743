#!/usr/bin/env bash
# writ demo (docs/tutorial.md walks through the same steps): a real MCP filesystem tool server runs as
# an agent task under writd in enforce mode; `writ tail` watches; the agent is tricked into reading
# an SSH key; writ kills the task, revokes its credentials (introspection says inactive) and the OCSF
# finding lands in the SIEM file. Non-interactive; everything lives in a temp dir and is stopped at the
# end. Exit 0 = the demo showed what it should; 1 = it did not; 77 = cannot run here (reason printed).
#
#   scripts/demo.sh [--writd BIN] [--writ BIN] [--keep] [--sanitized]
# --sanitized (CTest passes it in a tree built with WRIT_SANITIZE, e.g. build-asan): writd loads the
# intents with the sanitizer runtime's start-up reads of /proc/self/{cmdline,environ} added, which the
# sanitized `writ svid` makes inside the task, and the demo checks that nothing else used them
# (tests/e2e/agents/sanitizer_policies.mjs says why).
# Needs: root, a built tree (scripts/build.sh), node + npm (the MCP packages are installed with npm ci
# into tests/e2e/agents/node_modules on first use).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
WRITD=$SRC/build/bin/writd
WRIT=$SRC/build/bin/writ
KEEP=0
SANITIZED=0
while [ $# -gt 0 ]; do
  case $1 in
    --writd) WRITD=$2; shift 2 ;;
    --writ) WRIT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --sanitized) SANITIZED=1; shift ;;
    *) echo "usage: $0 [--writd BIN] [--writ BIN] [--keep] [--sanitized]" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
skip() { echo "demo: SKIP: $*"; exit 77; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "run as root (writd loads BPF programs and creates cgroups)"
[ -x "$WRITD" ] && [ -x "$WRIT" ] || skip "build first: scripts/build.sh ($WRITD, $WRIT missing)"
command -v node >/dev/null && command -v npm >/dev/null || skip "node and npm are needed for the MCP server"

AGENTS=$SRC/tests/e2e/agents
if [ ! -f "$AGENTS/node_modules/.package-lock.json" ] || [ "$AGENTS/package-lock.json" -nt "$AGENTS/node_modules/.package-lock.json" ]; then
  say "installing the pinned MCP packages (npm ci)"
  if ! (cd "$AGENTS" && timeout 240 npm ci --no-audit --no-fund); then
    timeout 20 npm ping >/dev/null 2>&1 || skip "npm cannot reach the registry"
    fail "npm ci failed"
  fi
fi

# The agent runs unprivileged, as the user behind sudo (or, run as plain root, as a system user made
# for it), a member of the control group writ: the group the socket is 0660 for.
getent group writ >/dev/null || groupadd --system writ
AGENT_USER=${SUDO_USER:-writ-agent}
if [ "$AGENT_USER" = writ-agent ] && ! getent passwd writ-agent >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups writ writ-agent
fi
D=$(mktemp -d /tmp/writ-demo-XXXXXX)
chmod 755 "$D"
PORT=$((18000 + RANDOM % 2000))
WRITD_PID=""; TAIL_PID=""
cleanup() {
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null || true
  if [ -n "$WRITD_PID" ]; then
    kill "$WRITD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$WRITD_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  # writd leaves its (empty) cgroup subtree directory behind; this one is the demo's own.
  CG=$(sed -n 's/.*cgroups under \([^,]*\),.*/\1/p' "$D/writd.log" 2>/dev/null | head -1)
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true
  [ -n "$CG" ] && rm -rf "/sys/fs/bpf/$(basename "$CG")" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "demo files kept in $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT

POLICIES=$SRC/policies
if [ "$SANITIZED" = 1 ]; then
  POLICIES=$D/policies
  node "$AGENTS/sanitizer_policies.mjs" write "$SRC/policies" "$POLICIES" || fail "cannot write $POLICIES"
fi

say "1. configuration: enforce mode, the repo's intents, an OCSF file sink ($D)"
cat > "$D/writd.yaml" <<EOF
mode: enforce
policies: $POLICIES
state_dir: $D/state
run_dir: $D/run
events: $D/events.jsonl
trust_domain: example.org
cgroup_subtree: writ-e2e-demo-$$
control: {group: writ}
sinks:
  - {type: file, path: $D/ocsf.jsonl, format: ocsf}
EOF
cat "$D/writd.yaml"

say "2. start writd"
"$WRITD" --config "$D/writd.yaml" --http "127.0.0.1:$PORT" >"$D/writd.log" 2>&1 &
WRITD_PID=$!
for _ in $(seq 100); do [ -S "$D/run/writd.sock" ] && break; sleep 0.1; done
[ -S "$D/run/writd.sock" ] || { cat "$D/writd.log"; fail "writd did not start in 10 s"; }
export WRIT_SOCKET=$D/run/writd.sock
"$WRIT" status >"$D/status.txt"
head -20 "$D/status.txt"

say "3. writ tail --violations in the background"
"$WRIT" tail --violations --format text >"$D/tail.txt" 2>&1 &
TAIL_PID=$!

# The agent's world: a docs directory it is meant to work on, and a HOME with an SSH key.
mkdir -p "$D/docs" "$D/home/.ssh"
echo "meeting notes" >"$D/docs/notes.md"
echo "-----BEGIN OPENSSH PRIVATE KEY----- (fake)" >"$D/home/.ssh/id_ed25519"
chown -R "$AGENT_USER:" "$D/docs" "$D/home"

say "4. the agent: an MCP client drives @modelcontextprotocol/server-filesystem under intent mcp-filesystem"
# The server itself is started with too wide a scope (docs AND the home directory), as a careless
# configuration would; the task's intent only grants the docs directory. The agent fetches the task's
# JWT-SVID (in a tool call's sh), lists and reads the docs, then -- prompt-injected -- reads the key.
cat >"$D/steps.json" <<EOF
[{"call": "list_directory", "args": {"path": "$D/docs"}},
 {"call": "read_text_file", "args": {"path": "$D/docs/notes.md"}},
 {"sleep_ms": 1500},
 {"call": "read_text_file", "args": {"path": "$D/home/.ssh/id_ed25519"}}]
EOF
# with_svid.mjs fetches the task's JWT-SVID from inside the task (`writ svid`), then starts the server.
SERVER=$AGENTS/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js
HOME=$D/home SPIFFE_ENDPOINT_SOCKET=unix:$D/run/workload.sock \
  timeout 60 node "$AGENTS/agent.mjs" "$(cat "$D/steps.json")" -- \
  "$WRIT" run --user "$AGENT_USER" --agent spiffe://example.org/agent/docs-bot --principal user:alice@example.org \
    --intent mcp-filesystem --param "root=$D/docs" --param "server=$AGENTS" --param "writ=$WRIT" \
    -- node "$AGENTS/with_svid.mjs" "$WRIT" demo "$SERVER" "$D/docs" "$D/home" \
    2>"$D/agent.stderr" | tee "$D/agent.jsonl" || true

TASK=$(sed -n 's/.*"task":"\(t-[0-9a-f]*\)".*/\1/p' "$D/agent.jsonl" | tail -1)
[ -n "$TASK" ] || fail "the agent did not report its task id"
EXIT=$(sed -n 's/.*"exit":\([0-9a-z]*\).*/\1/p' "$D/agent.jsonl" | tail -1)

say "5. what writ did to task $TASK (writ run exited $EXIT)"
for _ in $(seq 100); do grep -q "\"task_end\".*$TASK\|$TASK.*\"task_end\"" "$D/events.jsonl" 2>/dev/null && break; sleep 0.1; done
python3 - "$D/events.jsonl" "$TASK" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("agent", {}).get("task_id") != sys.argv[2]:
        continue
    if e["kind"] == "open" and e.get("verdict") == "violation":
        f = e["finding"]
        print(f"VIOLATION open {e['file']['path']} -> {e['outcome']} rule={f['rule']} frameworks={','.join(f['frameworks'])}")
    elif e["kind"] == "action":
        a = e["action"]
        print(f"ACTION {a['type']} {a['result']} ({a.get('reason', '')})")
    elif e["kind"] == "task_end":
        print(f"TASK_END reason={e['task']['reason']}")
EOF
grep -q "\"kind\":\"open\".*id_ed25519.*\"verdict\":\"violation\"" "$D/events.jsonl" || fail "no violation event for the key read"
grep -q "\"type\":\"kill\"" "$D/events.jsonl" || fail "no kill action"
[ "$EXIT" = 137 ] || fail "writ run exited $EXIT, expected 137 (killed)"
grep -q "FAKE\|OPENSSH" "$D/agent.jsonl" && fail "the key's content reached the agent"

say "6. the task's credentials: revoked (RFC 7662 introspection of the SVID it fetched)"
TOKEN=$(sed -n 's/^WRIT_SVID=//p' "$D/agent.stderr" | head -1)
[ -n "$TOKEN" ] || { cat "$D/agent.stderr"; fail "the task did not get a JWT-SVID"; }
echo "SVID: ${TOKEN:0:40}..."
INTRO=$(curl -s -m 5 -X POST "http://127.0.0.1:$PORT/introspect" --data-urlencode "token=$TOKEN")
echo "POST /introspect -> $INTRO"
echo "$INTRO" | grep -q '"active":false' || fail "the task's SVID is still active after the violation"
grep -q '"type":"revoke"' "$D/events.jsonl" || fail "no revoke action"

say "7. the OCSF finding in the SIEM file ($D/ocsf.jsonl)"
for _ in $(seq 50); do grep -q id_ed25519 "$D/ocsf.jsonl" 2>/dev/null && break; sleep 0.1; done
FINDING=$(grep id_ed25519 "$D/ocsf.jsonl" | grep '"class_uid":2004' | head -1 || true)
[ -n "$FINDING" ] || fail "no OCSF Detection Finding (class_uid 2004) for the key read"
# Printed whole: a pipe into `head` would make the demo's exit status depend on SIGPIPE timing.
echo "$FINDING" | python3 -m json.tool

say "8. writ tail saw it live"
sleep 0.5
cat "$D/tail.txt"
grep -q id_ed25519 "$D/tail.txt" || fail "writ tail did not show the violation"

if [ "$SANITIZED" = 1 ]; then
  node "$AGENTS/sanitizer_policies.mjs" check "$D/events.jsonl" "$WRIT" ||
    fail "a process other than the sanitized writ used the reads added for its runtime"
fi

say "demo OK: the agent tried to read $D/home/.ssh/id_ed25519 through its MCP tool; writ killed task $TASK and revoked its credentials"

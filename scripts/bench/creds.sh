#!/usr/bin/env bash
# Credential latencies (docs/performance.md, "Credentials"): violation -> introspection `active: false`,
# and JWT-SVID fetch latency (Workload API FetchJWTSVID, `writ svid`). Starts its own writd (enforce mode,
# its own cgroup subtree, run and state dirs, HTTP on a loopback port) and runs tests/bench/creds_latency.
#
#   scripts/bench/creds.sh [--trials N] [--no-build] [--build-dir DIR] [--out DIR] [--pg]
#
# --pg: instead, PostgreSQL revocation -> the task's live session terminated, after a violation and
# after `writ revoke` (N trials each). Starts its own cluster (Debian's postgresql, unix socket only,
# SCRAM) with the provider's admin as docs/credentials.md creates it (LOGIN CREATEROLE, not a superuser).
#
# Needs root (writd loads BPF). Exit 77 = cannot run here. Last lines: creds_latency's percentiles.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="${WRIT_BUILD_DIR:-$root/build}"
out="" trials=300 do_build=1 pg=0
while (($#)); do
  case "$1" in
    --trials) trials="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --pg) pg=1; shift ;;
    *) echo "bench/creds.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || { echo "bench/creds.sh: --trials must be a positive integer" >&2; exit 2; }
if [[ $EUID -ne 0 ]]; then echo "bench/creds.sh: skipped: must run as root" >&2; exit 77; fi
bin="$build_dir/bin"
if ((do_build)); then
  cmake --build "$build_dir" --target writd writ creds_latency -j1 >/dev/null \
    || { echo "bench/creds.sh: build failed in $build_dir" >&2; exit 1; }
fi
for b in writd writ creds_latency; do
  [[ -x "$bin/$b" ]] || { echo "bench/creds.sh: $bin/$b is missing" >&2; exit 1; }
done
[[ -n "$out" ]] || out="$(mktemp -d /tmp/writ-bench-creds-XXXXXX)"
mkdir -p "$out/policies" "$out/work"
bench_root_intents "$root/tests/bench/policies/bench-revoke.yaml" "$out/policies"
: >"$out/work/revoke-target"
# A free loopback port: bind to 0 and read it back.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
subtree="writ-bench-creds-$$"
pg_bin="" pg_dir="$out/pg" pg_port=$((20000 + $$ % 20000))
stop_pg() { [[ -n "$pg_bin" && -d "$pg_dir/data" ]] && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1; return 0; }
if ((pg)); then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -1)"
  [[ -x "$pg_bin/initdb" ]] || { echo "bench/creds.sh: skipped: no /usr/lib/postgresql/*/bin (install postgresql)" >&2; exit 77; }
  bench_root_intents "$root/tests/bench/policies/bench-pg-revoke.yaml" "$out/policies"
  mkdir -p "$pg_dir" && chown postgres: "$pg_dir" && chmod 755 "$pg_dir"
  su_pw="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')" admin_pw="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  echo "$su_pw" >"$pg_dir/pw" && chown postgres: "$pg_dir/pw"
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=scram-sha-256 --pwfile="$pg_dir/pw" -E UTF8 >"$out/initdb.log" 2>&1
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -o "-k $pg_dir -p $pg_port -c listen_addresses=''" start >/dev/null
  trap stop_pg EXIT
  # The admin exactly as docs/credentials.md creates it.
  PGPASSWORD="$su_pw" "$pg_bin/psql" -X -q -h "$pg_dir" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE orders(id int); INSERT INTO orders VALUES (1), (2);
CREATE ROLE writ_admin LOGIN CREATEROLE PASSWORD '$admin_pw';
GRANT SELECT ON TABLE orders TO writ_admin WITH GRANT OPTION;
SQL
  pg_yaml="credentials:
  providers:
    - {name: pg, type: postgres, conninfo: \"host=$pg_dir port=$pg_port dbname=postgres user=writ_admin password=$admin_pw\", grants: [\"SELECT ON TABLE orders\"]}"
fi
cat >"$out/writd.yaml" <<YAML
mode: enforce
policies: $out/policies
state_dir: $out/state
run_dir: $out/run
events: $out/events.jsonl
cgroup_subtree: $subtree
bpf_pin_dir: none
http: 127.0.0.1:$port
sinks: []
${pg_yaml:-}
YAML
"$bin/writd" --config "$out/writd.yaml" >>"$out/writd.log" 2>&1 &
writd_pid=$!
cleanup() {
  kill -TERM "$writd_pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$writd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$writd_pid" 2>/dev/null || true
  wait "$writd_pid" 2>/dev/null || true
  stop_pg
  local cg
  cg="$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/$subtree"
  [[ -d "$cg" ]] && { for d in "$cg"/*/; do [[ -d "$d" ]] && { echo 1 >"$d/cgroup.kill" || true; rmdir "$d" 2>/dev/null || true; }; done; rmdir "$cg" 2>/dev/null || true; }
  # Under set -e an EXIT trap's last status becomes the script's: a subtree writd already removed at its
  # clean stop must not turn a good run into a failure.
  return 0
}
trap cleanup EXIT
for _ in $(seq 300); do
  WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" status >/dev/null 2>&1 && break
  kill -0 "$writd_pid" 2>/dev/null || { echo "bench/creds.sh: writd exited; see $out/writd.log" >&2; exit 1; }
  sleep 0.1
done
if ((pg)); then
  WRIT_SOCKET="$out/run/writd.sock" "$bin/creds_latency" --pg-driver --writ "$bin/writ" --intent bench-pg-revoke \
    --param "dir=$out/work" --path "$out/work/revoke-target" --pg-host "$pg_dir" --pg-port "$pg_port" \
    --trials "$trials" 2>>"$out/writ-run.log" | tee "$out/creds_latency.txt"
  exit "${PIPESTATUS[0]}"
fi
WRIT_SOCKET="$out/run/writd.sock" "$bin/creds_latency" --driver --writ "$bin/writ" --intent bench-revoke \
  --param "dir=$out/work" --path "$out/work/revoke-target" --http "127.0.0.1:$port" \
  --workload-socket "$out/run/workload.sock" --trials "$trials" 2>>"$out/writ-run.log" | tee "$out/creds_latency.txt"

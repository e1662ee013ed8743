#!/usr/bin/env bash
# Side-by-side overhead harness (docs/performance.md). Three workloads, each under every monitor
# configuration, in alternating rounds; prints medians, ratios to no-monitor, events seen and drops,
# then the violation -> death latency of writd in enforce mode and the kernel timestamp -> verdict
# latency at 10k and 100k events/s (enforce and monitor mode).
#
#   scripts/bench/side_by_side.sh [--rounds N] [--quick] [--only cfg,cfg] [--no-build] [--build-dir DIR] [--out DIR]
#                    [--no-latency] [--load-seconds S] (--no-latency also skips the credential
#                    latencies of scripts/bench/creds.sh)
#
# --load-seconds S also runs the load test (tests/e2e/load_e2e_test.cc) for S seconds: producers on
# every CPU inside one task, every record judged or counted as a drop, nothing left behind; its LOAD
# line (rate, drops, writd peak RSS) is printed before the summary line. CTest runs it for 10 s.
#
# Configurations, in this order within a round (auditd runs after every other round, see below):
#   none           the workload alone
#   floor          tests/bench/floor: minimal tracepoint + ring buffer monitor (the physical reference)
#   writd-task     writd (monitor mode), workload inside a task (intent coding-agent)
#   writd-outside  writd running, workload outside any task
#   bpftrace       Debian's bpftrace, one printf per event to a file
#   auditd         Debian's auditd, openat/execve/connect rules for the workload's gid
# Enabling audit leaves a per-process cost until reboot (every process forked while audit was ever
# enabled carries an audit context), so auditd runs last and any later run on this boot is biased.
#
# Needs root. Installs bpftrace and auditd (apt-get) when those configurations are selected, and on exit
# stops everything it started and removes its cgroups and audit rules. Exit 77 = cannot run here (not
# root, no BPF): the CTest smoke test reports that as skipped.
# Last line of output, always:
#   writd-task open=R exec=R connect=R; writd-outside open=R exec=R connect=R; drops=N
set -euo pipefail

source "$(dirname "$0")/lib.sh"
root="$bench_root"
rounds=5
quick=0
only=""
build_dir="${WRIT_BUILD_DIR:-$root/build}"
do_build=1
do_latency=1
load_seconds=0
out=""

usage() {
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs N}"; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only="${2:?--only needs a list}"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --no-latency) do_latency=0; shift ;;
    --load-seconds) load_seconds="${2:?--load-seconds needs S}"; shift 2 ;;
    --build-dir) build_dir="${2:?--build-dir needs DIR}"; shift 2 ;;
    --out) out="${2:?--out needs DIR}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench/side_by_side.sh: unknown option $1" >&2; usage ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench/side_by_side.sh: --rounds must be a positive integer" >&2; exit 2; }
[[ "$load_seconds" =~ ^[0-9]+$ ]] || { echo "bench/side_by_side.sh: --load-seconds must be a whole number of seconds" >&2; exit 2; }

# Counts: the spec's full sizes; --quick is a smoke run (< 2 minutes).
if ((quick)); then
  n_open=100000 n_exec=100 n_connect=5000 trials=30
  [[ "$rounds" == 5 ]] && rounds=2
else
  n_open=500000 n_exec=600 n_connect=80000 trials=300
fi
max_seconds=120          # per workload run: a wedged run stops and says so
workloads=(open exec connect)
all_configs=(none floor writd-task writd-outside bpftrace auditd)

configs=()
if [[ -n "$only" ]]; then
  IFS=, read -r -a wanted <<<"$only"
  for w in "${wanted[@]}"; do
    found=0
    for c in "${all_configs[@]}"; do [[ "$c" == "$w" ]] && found=1; done
    ((found)) || { echo "bench/side_by_side.sh: --only: unknown configuration '$w' (known: ${all_configs[*]})" >&2; exit 2; }
  done
  for c in "${all_configs[@]}"; do
    for w in "${wanted[@]}"; do [[ "$c" == "$w" ]] && configs+=("$c"); done
  done
else
  configs=("${all_configs[@]}")
fi
has() { local x; for x in "${configs[@]}"; do [[ "$x" == "$1" ]] && return 0; done; return 1; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  echo "bench/side_by_side.sh: skipped: must run as root (loads BPF programs, creates cgroups)" >&2
  exit 77
fi
if [[ ! -r /sys/kernel/btf/vmlinux ]]; then
  echo "bench/side_by_side.sh: skipped: no kernel BTF (/sys/kernel/btf/vmlinux)" >&2
  exit 77
fi
cg2="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)"
[[ -n "$cg2" ]] || { echo "bench/side_by_side.sh: skipped: no cgroup2 mount" >&2; exit 77; }

# ---- packages (only what the selected configurations need; never in setup.sh) ----------------------
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}
has bpftrace && apt_install bpftrace
# auditd is installed only when its turn comes: its package scripts may start it, and audit must not be
# enabled before every other configuration has run.

# ---- build -------------------------------------------------------------------------------------------
bin="$build_dir/bin"
if ((do_build)); then
  log "building writd writ workload floor kill_latency in $build_dir"
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="${WRIT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
  targets=(writd writ workload floor kill_latency)
  ((load_seconds)) && targets+=(load_e2e_test)
  cmake --build "$build_dir" --target "${targets[@]}" -j1 >/dev/null \
    || die "build failed in $build_dir (run the cmake command above to see why)"
fi
needed=(workload)
has floor && needed+=(floor)
{ has writd-task || has writd-outside; } && needed+=(writd writ kill_latency)
((load_seconds)) && needed+=(writd writ load_e2e_test)
for b in "${needed[@]}"; do
  [[ -x "$bin/$b" ]] || die "$bin/$b is missing: build it (or drop --no-build)"
done

# ---- scratch, cgroups, cleanup ---------------------------------------------------------------------
out="${out:-/tmp/writ-bench-$(date +%Y%m%d-%H%M%S)}"
# Reuse only a directory this harness made (it holds results.tsv): never wipe someone's files.
if [[ -d "$out" && -n "$(ls -A "$out")" && ! -e "$out/results.tsv" ]]; then
  die "--out $out exists and is not a previous bench output; choose another directory"
fi
rm -rf "$out"
mkdir -p "$out"/{run,state,repo,kill,policies}
results="$out/results.tsv"
printf 'round\tconfig\tworkload\tops_per_sec\tevents\tdrops\tcpu_us_per_op\n' >"$results"
echo "bench file" >"$out/repo/file"
# Names of this run's own: two benches (or a bench and a test) at once must not share a cgroup or port.
subtree="writ-bench-$$"                   # writd's cgroup subtree (and its pin dir name)
load_cg="$cg2/$subtree-load"              # workloads of every configuration but writd-task
mkdir -p "$load_cg"
# coding-agent allows localhost:9000-9100 (no violation noise): the first port there free right now.
connect_port="$(python3 -c '
import random, socket
ports = list(range(9000, 9101)); random.shuffle(ports)
for p in ports:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
')"
[[ -n "$connect_port" ]] || die "no free loopback port in 9000-9100 for the connect workload"
# writd's /metrics (verdict latency histogram): a port the kernel says is free now.
http_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

writd_pid="" floor_pid="" bt_pid="" auditd_started=0 audit_rules=0
cleanup() {
  local rc=$?
  set +e
  [[ -n "$bt_pid" ]] && kill -TERM "$bt_pid" 2>/dev/null && wait "$bt_pid" 2>/dev/null
  [[ -n "$floor_pid" ]] && kill -TERM "$floor_pid" 2>/dev/null && wait "$floor_pid" 2>/dev/null
  [[ -n "$writd_pid" ]] && stop_writd
  if ((audit_rules)); then
    auditctl -D >/dev/null 2>&1
    auditctl -e 0 >/dev/null 2>&1
  fi
  if ((auditd_started)) && [[ -s /var/run/auditd.pid ]]; then
    kill -TERM "$(cat /var/run/auditd.pid)" 2>/dev/null
  fi
  # Cgroups: a cgroup reports populated for a moment after its last process exits; retry briefly.
  local cg i
  for cg in "$load_cg" "$cg2/$subtree"; do
    for ((i = 0; i < 50; i++)); do
      [[ -d "$cg" ]] || break
      rmdir "$cg" 2>/dev/null && break
      sleep 0.1
    done
    [[ ! -d "$cg" ]] || log "could not remove $cg (still in use?)"
  done
  rm -f "$out/events.jsonl"* "$out/audit/audit.log"*
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs "$@" inside cgroup $1 (joins before exec, so the first instruction is already attributed).
in_cgroup() {
  local cg="$1"; shift
  bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

workload_args() {
  case "$1" in
    open) echo "open $n_open --file $out/repo/file" ;;
    exec) echo "exec $n_exec --exe /bin/true" ;;
    connect) echo "connect $n_connect --port $connect_port" ;;
  esac
}

# Parses a workload's result line into "OPS_PER_SEC CPU_US_PER_OP"; fails the run on anything else.
# CPU time (user + sys of the workload and its children) per op is the load-independent companion of
# ops/s: on a shared machine wall-clock throughput also measures the neighbours.
ops_of() {
  local line
  line="$(grep -m1 '^workload=' <<<"$1")" || die "workload printed no result: $1"
  grep -q 'complete=1' <<<"$line" || log "warning: workload stopped early (--max-seconds): $line"
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         printf "%s %.3f\n", v["ops_per_sec"], (v["user_s"] + v["sys_s"]) * 1e6 / v["ops"] }' <<<"$line"
}

record() {  # round config workload "ops cpu" events drops
  local ops cpu
  read -r ops cpu <<<"$4"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$ops" "$5" "$6" "$cpu" >>"$results"
  log "round $1 $2 $3: $ops ops/s, $cpu cpu-us/op, events $5, drops $6"
}

# ---- writd -------------------------------------------------------------------------------------------
bench_root_intents "$root"/policies/*.yaml "$out/policies"
rm -f "$out/policies/writd.yaml"
cat >"$out/writd.yaml" <<EOF
# Generated by scripts/bench/side_by_side.sh: its own subtree, run dir and state dir; coding-agent in monitor mode.
mode: monitor
policies: $out/policies
state_dir: $out/state
run_dir: $out/run
events: $out/events.jsonl
trust_domain: example.org
cgroup_subtree: $subtree
http: 127.0.0.1:$http_port
sinks: []
EOF
writ_cli() { WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" "$@"; }

start_writd() {  # config-file
  rm -f "$out/events.jsonl"*
  "$bin/writd" --config "$1" --events "$out/events.jsonl" --run-dir "$out/run" \
    --state-dir "$out/state" >>"$out/writd.log" 2>&1 &
  writd_pid=$!
  local i
  for ((i = 0; i < 300; i++)); do
    writ_cli status >/dev/null 2>&1 && return 0
    kill -0 "$writd_pid" 2>/dev/null || { writd_pid=""; die "writd exited at start; see $out/writd.log"; }
    sleep 0.1
  done
  die "writd did not answer status within 30 s; see $out/writd.log"
}

stop_writd() {
  local i
  kill -TERM "$writd_pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$writd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$writd_pid" 2>/dev/null; then
    log "writd did not stop in 15 s: SIGKILL"
    kill -KILL "$writd_pid" 2>/dev/null || true
  fi
  wait "$writd_pid" 2>/dev/null || true
  writd_pid=""
  rm -f "$out/events.jsonl"*
}

# "events drops" from writd's status: records judged (all kinds) and every drop it counts (kernel ring
# buffer, userspace decode/tail, sink queue).
writd_counts() {
  writ_cli status | awk '
    /^events by kind:/ { for (i = 4; i <= NF; i++) { split($i, kv, "="); ev += kv[2] } }
    /^drops by kind:/  { for (i = 4; i <= NF; i++) { split($i, kv, "="); dr += kv[2] } }
    /^userspace drops:/ { dr += $3 }
    /^counters:/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^sink_.*_dropped$/) dr += kv[2] } }
    END { printf "%d %d\n", ev, dr }'
}

# Waits (bounded) until writd has no task left, so one run's records never count in the next.
wait_tasks_gone() {
  local i
  for ((i = 0; i < 100; i++)); do
    writ_cli status | grep -q '^tasks: 0$' && return 0
    sleep 0.1
  done
  log "warning: a task was still registered after 10 s"
}

# writd's own CPU time (user + sys, all threads) in clock ticks: the cost that does not land on the
# workload's syscalls but competes with it for the machine's cores.
writd_ticks() { awk '{ print $14 + $15 }' "/proc/$writd_pid/stat"; }

run_writd_round() {  # round
  local r="$1" w res ops ev0 dr0 ev1 dr1 t0 t1
  start_writd "$out/writd.yaml"
  sleep 1  # let start-up work (policy load, verifier) finish before timing
  if has writd-task; then
    for w in "${workloads[@]}"; do
      read -r ev0 dr0 < <(writd_counts)
      t0="$(writd_ticks)"
      # shellcheck disable=SC2046
      res="$(writ_cli run --allow-root --agent spiffe://example.org/bench --intent coding-agent \
               --param repo="$out/repo" -- "$bin/workload" $(workload_args "$w") --max-seconds "$max_seconds" 2>>"$out/writ-run.log")" \
        || die "writ run failed; see $out/writ-run.log"
      ops="$(ops_of "$res")"
      wait_tasks_gone
      t1="$(writd_ticks)"
      read -r ev1 dr1 < <(writd_counts)
      record "$r" writd-task "$w" "$ops" $((ev1 - ev0)) $((dr1 - dr0))
      printf '%s\t%s\t%s\t%s\n' "$r" "$w" $((ev1 - ev0)) \
        "$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }')" \
        >>"$out/writd_cpu.tsv"
    done
  fi
  if has writd-outside; then
    for w in "${workloads[@]}"; do
      read -r ev0 dr0 < <(writd_counts)
      # shellcheck disable=SC2046
      res="$(in_cgroup "$load_cg" "$bin/workload" $(workload_args "$w") --max-seconds "$max_seconds")"
      ops="$(ops_of "$res")"
      sleep 0.05
      read -r ev1 dr1 < <(writd_counts)
      record "$r" writd-outside "$w" "$ops" $((ev1 - ev0)) $((dr1 - dr0))
    done
  fi
  stop_writd
}

# ---- floor -------------------------------------------------------------------------------------------
run_floor() {  # round workload
  local r="$1" w="$2" res ops line i
  # Truncate here, not in the background child's redirection: the wait loop below could otherwise read
  # the previous round's "floor ready" before the child gets to truncate the file.
  : >"$out/floor.out"
  "$bin/floor" --cgroup "$load_cg" --max-seconds 600 >>"$out/floor.out" 2>>"$out/floor.log" &
  floor_pid=$!
  for ((i = 0; i < 200; i++)); do
    grep -q '^floor ready' "$out/floor.out" 2>/dev/null && break
    kill -0 "$floor_pid" 2>/dev/null || { floor_pid=""; die "floor exited at start; see $out/floor.log"; }
    sleep 0.05
  done
  grep -q '^floor ready' "$out/floor.out" || die "floor not ready after 10 s; see $out/floor.log"
  # shellcheck disable=SC2046
  res="$(in_cgroup "$load_cg" "$bin/workload" $(workload_args "$w") --max-seconds "$max_seconds")"
  ops="$(ops_of "$res")"
  kill -TERM "$floor_pid"
  wait "$floor_pid" || die "floor failed; see $out/floor.log"
  floor_pid=""
  line="$(grep '^floor events=' "$out/floor.out")" || die "floor printed no counts"
  record "$r" floor "$w" "$ops" "$(sed 's/.*events=\([0-9]*\).*/\1/' <<<"$line")" \
    "$(sed 's/.* drops=\([0-9]*\).*/\1/' <<<"$line")"
}

# ---- bpftrace ----------------------------------------------------------------------------------------
# The same three hooks as floor, the same cgroup filter, one printf per event into a file. The cgroup id
# is written as a number: bpftrace 0.17's cgroupid() fails here (name_to_handle_at: EOVERFLOW).
load_cg_id="$(stat -c %i "$load_cg")"
cat >"$out/bench.bt" <<EOF
tracepoint:syscalls:sys_enter_openat /cgroup == $load_cg_id/ { printf("open %d %s\\n", pid, str(args->filename)); }
tracepoint:sched:sched_process_exec /cgroup == $load_cg_id/ { printf("exec %d %s\\n", pid, str(args->filename)); }
tracepoint:syscalls:sys_enter_connect /cgroup == $load_cg_id/ { printf("connect %d\\n", pid); }
EOF

bt_lines() { grep -cE '^(open|exec|connect) ' "$out/bpftrace.out" || true; }

run_bpftrace() {  # round workload
  local r="$1" w="$2" res ops i ev0 ev lost
  : >"$out/bpftrace.out"
  bpftrace -o "$out/bpftrace.out" "$out/bench.bt" 2>"$out/bpftrace.err" &
  bt_pid=$!
  for ((i = 0; i < 600; i++)); do
    grep -q '^Attaching' "$out/bpftrace.out" 2>/dev/null && break
    kill -0 "$bt_pid" 2>/dev/null || { bt_pid=""; die "bpftrace exited at start: $(cat "$out/bpftrace.err")"; }
    sleep 0.1
  done
  grep -q '^Attaching' "$out/bpftrace.out" || die "bpftrace did not attach within 60 s"
  # "Attaching" is printed before the probes are live: wait until a marker open shows up.
  for ((i = 0; i < 100; i++)); do
    in_cgroup "$load_cg" cat "$out/bt-ready-marker" 2>/dev/null || true
    sleep 0.1
    grep -q 'bt-ready-marker' "$out/bpftrace.out" && break
  done
  grep -q 'bt-ready-marker' "$out/bpftrace.out" || die "bpftrace probes not live after 10 s"
  ev0="$(bt_lines)"
  # shellcheck disable=SC2046
  res="$(in_cgroup "$load_cg" "$bin/workload" $(workload_args "$w") --max-seconds "$max_seconds")"
  ops="$(ops_of "$res")"
  kill -INT "$bt_pid"
  for ((i = 0; i < 300; i++)); do kill -0 "$bt_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$bt_pid" 2>/dev/null || true
  wait "$bt_pid" 2>/dev/null || true
  bt_pid=""
  ev=$(($(bt_lines) - ev0))
  # bpftrace reports perf-buffer losses as "Lost N events".
  lost="$(cat "$out/bpftrace.out" "$out/bpftrace.err" | awk '/Lost [0-9]+ events/ { for (i = 1; i < NF; i++) if ($i == "Lost") n += $(i + 1) } END { print n + 0 }')"
  record "$r" bpftrace "$w" "$ops" "$ev" "$lost"
  rm -f "$out/bpftrace.out"
}

# ---- auditd ------------------------------------------------------------------------------------------
audit_gid=4242  # the workload runs with this gid; the rules match it (audit's equivalent of a cgroup filter)

start_auditd() {
  apt_install auditd
  mkdir -p "$out/audit"
  # Our own config: the log in the scratch dir, never rotated during the run, so records can be counted.
  sed -e "s|^log_file.*|log_file = $out/audit/audit.log|" \
      -e 's|^max_log_file .*|max_log_file = 100000|' \
      -e 's|^max_log_file_action.*|max_log_file_action = IGNORE|' \
      -e 's|^space_left .*|space_left = 2|' -e 's|^admin_space_left .*|admin_space_left = 1|' \
      -e 's|^space_left_action.*|space_left_action = IGNORE|' \
      -e 's|^admin_space_left_action.*|admin_space_left_action = IGNORE|' \
      -e 's|^disk_full_action.*|disk_full_action = IGNORE|' \
      /etc/audit/auditd.conf >"$out/audit/auditd.conf"
  chmod 0640 "$out/audit/auditd.conf"
  if [[ -s /var/run/auditd.pid ]] && kill -0 "$(cat /var/run/auditd.pid)" 2>/dev/null; then
    # The package's scripts started one: ours replaces it (and is stopped at the end).
    kill -TERM "$(cat /var/run/auditd.pid)"
    sleep 1
  fi
  auditd -c "$out/audit" || die "auditd did not start"
  auditd_started=1
  local i
  for ((i = 0; i < 100; i++)); do [[ -e "$out/audit/audit.log" ]] && break; sleep 0.1; done
  audit_rules=1
  auditctl -D >/dev/null
  auditctl -b 8192 >/dev/null
  auditctl -a always,exit -F arch=b64 -S openat -S execve -S connect -F egid=$audit_gid -k writbench >/dev/null
  auditctl -e 1 >/dev/null
}

audit_lost() { auditctl -s | awk '$1 == "lost" { print $2 }'; }

run_auditd() {  # round workload
  local r="$1" w="$2" res ops off lost0 lost1 ev
  off="$(stat -c %s "$out/audit/audit.log")"
  lost0="$(audit_lost)"
  # shellcheck disable=SC2046
  res="$(in_cgroup "$load_cg" setpriv --regid "$audit_gid" --clear-groups -- "$bin/workload" \
           $(workload_args "$w") --max-seconds "$max_seconds")"
  ops="$(ops_of "$res")"
  sleep 2  # auditd writes asynchronously
  lost1="$(audit_lost)"
  ev="$(tail -c +"$((off + 1))" "$out/audit/audit.log" | grep -c '^type=SYSCALL.*key="writbench"' || true)"
  record "$r" auditd "$w" "$ops" "$ev" $((lost1 - lost0))
}

# ---- rounds ------------------------------------------------------------------------------------------
log "configs: ${configs[*]}; rounds: $rounds; counts open=$n_open exec=$n_exec connect=$n_connect; out $out"
log "machine: $(nproc) cpus, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
  for c in "${configs[@]}"; do
    case "$c" in
      none)
        for w in "${workloads[@]}"; do
          # shellcheck disable=SC2046
          res="$(in_cgroup "$load_cg" "$bin/workload" $(workload_args "$w") --max-seconds "$max_seconds")"
          record "$r" none "$w" "$(ops_of "$res")" 0 0
        done ;;
      floor) for w in "${workloads[@]}"; do run_floor "$r" "$w"; done ;;
      writd-task) run_writd_round "$r" ;;
      writd-outside) has writd-task || run_writd_round "$r" ;;
      bpftrace) for w in "${workloads[@]}"; do run_bpftrace "$r" "$w"; done ;;
      auditd) ;;  # after every other round
    esac
  done
done

# ---- kill latency and verdict latency (before auditd) --------------------------------------------------
latency_lines=()
# Kernel timestamp -> verdict at a fixed event rate: `workload open --rate R` (paced, one process) in a
# task, writd's writ_verdict_latency_microseconds histogram read from /metrics before and after, p50
# and p99 interpolated within the histogram's buckets (bounds 1.4-2x apart).
if ((quick)); then verdict_rates=(10000); verdict_secs=1; else verdict_rates=(10000 100000); verdict_secs=5; fi
metrics_buckets() {  # le<TAB>cumulative count, one line per bucket
  curl -s -m 5 "http://127.0.0.1:$http_port/metrics" |
    sed -n 's/^writ_verdict_latency_microseconds_bucket{le="\([^"]*\)"} \([0-9]*\)$/\1\t\2/p'
}
verdict_latency() {  # MODE INTENT PARAM FILE RATE
  local mode=$1 intent=$2 param=$3 file=$4 rate=$5 before after res line
  before="$(metrics_buckets)"
  [[ -n "$before" ]] || die "no verdict latency histogram at http://127.0.0.1:$http_port/metrics"
  res="$(writ_cli run --allow-root --agent spiffe://example.org/bench --intent "$intent" --param "$param" -- \
           "$bin/workload" open $((rate * verdict_secs)) --rate "$rate" --file "$file" \
           --max-seconds "$max_seconds" 2>>"$out/writ-run.log")" || die "writ run failed; see $out/writ-run.log"
  wait_tasks_gone
  after="$(metrics_buckets)"
  line="$(paste <(echo "$before") <(echo "$after") | awk -F'\t' -v mode="$mode" -v rate="$rate" \
      -v ops="$(ops_of "$res" | cut -d" " -f1)" '
    { le[NR] = $3; n[NR] = $4 - $2 }
    END {
      total = n[NR]; if (total <= 0) { printf "verdict_latency mode=%s rate=%s events=0\n", mode, rate; exit }
      split("0.5 0.99", qs, " ")
      for (k = 1; k <= 2; k++) {
        want = qs[k] * total; prev_le = 0; prev_n = 0; v = "inf"
        for (i = 1; i <= NR; i++) {
          if (n[i] >= want) {
            if (le[i] == "+Inf") { v = "> " prev_le; break }
            v = sprintf("%.0f", prev_le + (le[i] - prev_le) * (want - prev_n) / ((n[i] - prev_n) > 0 ? n[i] - prev_n : 1))
            break
          }
          prev_le = le[i]; prev_n = n[i]
        }
        p[k] = v
      }
      printf "verdict_latency mode=%s rate=%s achieved=%.0f events=%d p50_us=%s p99_us=%s\n", mode, rate, ops, total, p[1], p[2]
    }')"
  log "$line"
  latency_lines+=("$line")
}
if ((do_latency)) && has writd-task; then
  bench_root_intents "$root/tests/bench/policies/bench-kill.yaml" "$out/policies"
  sed -e "s|^policies:.*|policies: $out/policies|" -e 's|^mode:.*|mode: enforce|' "$out/writd.yaml" \
    >"$out/writd-enforce.yaml"
  bench_kill_targets "$out/kill"
  start_writd "$out/writd-enforce.yaml"
  sleep 1
  for mode in self exact component glob; do
    path="$(bench_kill_path "$mode" "$out/kill")"
    line="$(writ_cli run --allow-root --agent spiffe://example.org/bench --intent bench-kill --param dir="$out/kill" -- \
              "$bin/kill_latency" --mode "$mode" --path "$path" --trials "$trials" 2>>"$out/writ-run.log")" \
      || die "kill_latency failed; see $out/writ-run.log"
    log "$line"
    latency_lines+=("$line")
    wait_tasks_gone
  done
  for rate in "${verdict_rates[@]}"; do
    verdict_latency enforce bench-kill dir="$out/kill" "$out/kill/allowed" "$rate"
  done
  read -r _ kill_drops < <(writd_counts)
  stop_writd
  # The same paced workload judged by a monitor-mode writd: telemetry is batched (no wakeup; drained
  # every drain_interval, or as soon as writd is back from the previous drain), so its latency is the
  # batching delay by design.
  start_writd "$out/writd.yaml"
  sleep 1
  for rate in "${verdict_rates[@]}"; do
    verdict_latency monitor coding-agent repo="$out/repo" "$out/repo/file" "$rate"
  done
  read -r _ d < <(writd_counts)
  kill_drops=$((kill_drops + d))
  stop_writd
  printf '%s\n' "${latency_lines[@]}" >"$out/latency.txt"
fi

# ---- credentials: violation -> token inactive, SVID fetch (scripts/bench/creds.sh; before auditd) -----
creds_lines=()
if ((do_latency)) && has writd-task; then
  creds_args=(--build-dir "$build_dir" --trials "$trials" --out "$out/creds")
  ((do_build)) || creds_args+=(--no-build)
  "$root/scripts/bench/creds.sh" "${creds_args[@]}" >"$out/creds.txt" 2>>"$out/creds.log" \
    || die "bench/creds.sh failed; see $out/creds.log"
  mapfile -t creds_lines < <(grep -E '^(creds_latency|revoke_to_inactive|introspect_rtt|svid_fetch|writ_svid)' "$out/creds.txt")
  log "${creds_lines[1]:-}"
fi

# ---- load test (writd monitor mode, producers on every CPU; before auditd) ----------------------------
load_line=""
if ((load_seconds)); then
  log "load test: ${load_seconds} s"
  if WRIT_LOAD_SECONDS="$load_seconds" "$bin/load_e2e_test" >"$out/load.log" 2>&1; then
    load_line="$(grep -m1 '^LOAD ' "$out/load.log" || true)"
  else
    load_line="$(grep -m1 '^LOAD ' "$out/load.log" || true) FAILED (see $out/load.log)"
  fi
  log "$load_line"
fi

# ---- auditd: last ------------------------------------------------------------------------------------
if has auditd; then
  log "auditd: enabling audit now; every process forked from here until reboot carries an audit context"
  # In a subshell so a failure here still leaves the report of every other configuration; the flags
  # are set first so the EXIT trap cleans up whatever the subshell got to start.
  auditd_started=1 audit_rules=1
  if (
    start_auditd
    for ((r = 1; r <= rounds; r++)); do
      for w in "${workloads[@]}"; do run_auditd "$r" "$w"; done
    done
  ); then :; else log "auditd phase failed: its rows are missing from the report"; fi
  auditctl -D >/dev/null 2>&1 || true
  auditctl -e 0 >/dev/null 2>&1 || true
  audit_rules=0
  [[ -s /var/run/auditd.pid ]] && kill -TERM "$(cat /var/run/auditd.pid)" 2>/dev/null || true
  auditd_started=0
fi

# ---- report ------------------------------------------------------------------------------------------
{
  echo "# writ bench $(date -u +%Y-%m-%dT%H:%M:%SZ): $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "# rounds $rounds; counts open=$n_open exec=$n_exec connect=$n_connect; load at end $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/summary.txt"
python3 - "$results" "${configs[*]}" >>"$out/summary.txt" <<'EOF'
import statistics, sys
from collections import defaultdict
path, configs = sys.argv[1], sys.argv[2].split()
ops = defaultdict(list); ev = defaultdict(list); dr = defaultdict(int); cpu = defaultdict(list)
with open(path) as f:
    next(f)
    for line in f:
        r, c, w, o, e, d, u = line.rstrip("\n").split("\t")
        ops[c, w].append(float(o)); ev[c, w].append(int(e)); dr[c, w] += int(d); cpu[c, w].append(float(u))
wls = ["open", "exec", "connect"]
med = {k: statistics.median(v) for k, v in ops.items()}
print("| config | workload | median ops/s | ratio (none/config) | spread (min-max ops/s) | CPU µs/op (ratio) | events seen (median/run) | drops (all runs) |")
print("|---|---|---:|---:|---|---:|---:|---:|")
for c in configs:
    for w in wls:
        if (c, w) not in med: continue
        base = med.get(("none", w))
        ratio = f"{base / med[c, w]:.3f}" if base else "n/a"
        v = ops[c, w]
        u, ub = statistics.median(cpu[c, w]), statistics.median(cpu.get(("none", w), [0]))
        cpu_ratio = f"{u / ub:.2f}" if ub else "n/a"
        print(f"| {c} | {w} | {med[c, w]:,.0f} | {ratio} | {min(v):,.0f}-{max(v):,.0f} (n={len(v)}) | "
              f"{u:.2f} ({cpu_ratio}) | {statistics.median(ev[c, w]):,.0f} | {dr[c, w]} |")
def rat(c, w):
    b, m = med.get(("none", w)), med.get((c, w))
    return f"{b / m:.3f}" if b and m else "n/a"
drops = sum(v for (c, w), v in dr.items() if c.startswith("writd"))
print(f"RATIOS writd-task open={rat('writd-task','open')} exec={rat('writd-task','exec')} "
      f"connect={rat('writd-task','connect')}; writd-outside open={rat('writd-outside','open')} "
      f"exec={rat('writd-outside','exec')} connect={rat('writd-outside','connect')}; drops={drops}")
EOF
if [[ -s "$out/writd_cpu.tsv" ]]; then
  echo >>"$out/summary.txt"
  awk -F'\t' '{ ev[$2] += $3; cpu[$2] += $4 }
    END { printf "writd CPU (all threads) per event judged, writd-task runs:"
          for (w in ev) if (ev[w] > 0) printf " %s=%.2fus", w, cpu[w] * 1e6 / ev[w]; printf "\n" }' \
    "$out/writd_cpu.tsv" >>"$out/summary.txt"
fi
if [[ -n "$load_line" ]]; then
  printf '\nload test (%s s, writd monitor mode, one task, producers on every CPU):\n  %s\n' \
    "$load_seconds" "$load_line" >>"$out/summary.txt"
fi
if ((${#latency_lines[@]})); then
  {
    echo
    echo "kill latency (violation -> process dead, writd enforce, $trials trials each) and verdict latency"
    echo "(kernel timestamp -> verdict at a paced event rate, one task, ${verdict_secs} s per rate):"
    printf '  %s\n' "${latency_lines[@]}"
  } >>"$out/summary.txt"
fi
if ((${#creds_lines[@]})); then
  {
    echo
    echo "credentials (violation -> introspection inactive; JWT-SVID fetch), scripts/bench/creds.sh:"
    printf '  %s\n' "${creds_lines[@]}"
  } >>"$out/summary.txt"
fi
grep -v '^RATIOS ' "$out/summary.txt"
echo "results: $results"
ratios="$(grep '^RATIOS ' "$out/summary.txt" | sed 's/^RATIOS //')"
# writd's kill-latency run counts too: a drop there is a drop.
if [[ -n "${kill_drops:-}" && "${kill_drops}" != 0 ]]; then
  n="${ratios##*drops=}"
  ratios="${ratios%drops=*}drops=$((n + kill_drops))"
fi
echo "$ratios"

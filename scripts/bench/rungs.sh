#!/usr/bin/env bash
# The enforcement rungs side by side on one kernel (docs/performance.md, "The rungs"): what open, exec,
# connect and getppid (a syscall writ does not watch: what the syscall slow path costs every process
# of the host while a syscall tracepoint is attached) cost with no monitor, with writd on the tracepoint rung (writd.yaml `bpf_lsm: off`) and
# with writd on the BPF-LSM rung (`bpf_lsm: auto`, where the kernel loads it), for a process outside
# every task and for one inside an enforce-mode task. Meant for the VM tier's kernel (Debian 12's 6.1
# with BPF-LSM active): `scripts/vm-test.sh --bench` runs it in the guest. On a kernel that refuses
# LSM programs the lsm configuration is left out and the script says so.
#
#   sudo scripts/bench/rungs.sh [--build-dir DIR] [--rounds N] [--open N] [--exec N] [--connect N]
#                               [--getppid N]
#
# Configurations alternate within each round, the first one rotating from round to round (none, tp,
# lsm; then tp, lsm, none; ...), so drift of the machine and whatever the previous configuration left
# behind (a stopped writd's programs freed after an RCU grace period) land on each of them in turn;
# each configuration runs a short untimed warm-up of every workload first, after 2 s of settling.
# Metric: CPU time of the workload (user + sys, its children included) per operation, median over the
# rounds, and its ratio to none. Only ratios mean anything under software emulation (QEMU
# TCG): every instruction is emulated, and a syscall's cost there is not a hardware syscall's.
# Last line, always: "rungs open tp-out=R lsm-out=R tp-task=R lsm-task=R; exec ...; connect ...;
# getppid ..."
# (lsm-* = "n/a" where the rung did not load). Exit 77 when it cannot run here (not root).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build_dir="$root/build" rounds=3 n_open=50000 n_exec=200 n_connect=3000 n_getppid=100000
while (($#)); do
  case "$1" in
    --build-dir) build_dir="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --open) n_open="${2:?}"; shift 2 ;;
    --exec) n_exec="${2:?}"; shift 2 ;;
    --connect) n_connect="${2:?}"; shift 2 ;;
    --getppid) n_getppid="${2:?}"; shift 2 ;;
    *) echo "bench/rungs.sh: unknown argument '$1' (see the usage at the top of the script)" >&2; exit 2 ;;
  esac
done
bench_positive bench/rungs.sh "$rounds" "$n_open" "$n_exec" "$n_connect" "$n_getppid"
bench_require_root bench/rungs.sh
bin="$build_dir/bin"
for b in writd writ workload; do
  [[ -x "$bin/$b" ]] || { echo "bench/rungs.sh: $bin/$b is missing (scripts/build.sh)" >&2; exit 1; }
done
cg2="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)"
[[ -n "$cg2" ]] || { echo "bench/rungs.sh: skipped: no cgroup2 mount" >&2; exit 77; }

out="$(mktemp -d /tmp/writ-bench-rungs.XXXXXX)"
subtree="writ-bench-rungs-$$"
load_cg="$cg2/$subtree-load"  # the workloads outside every task
mkdir -p "$load_cg" "$out/repo"
echo "bench file" >"$out/repo/file"
cleanup() {
  bench_writd_stop
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -d "$load_cg" ]] || break
    rmdir "$load_cg" 2>/dev/null && break
    sleep 0.1
  done
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The task's intent: enforce mode, the coding-agent's file denies (so every open of the task is hashed
# and looked up in the kernel, on either rung), any exec, loopback connects; nothing kills.
# The connect workload's listener: a port the kernel says is free now.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$out/bench-rungs.yaml" <<EOF
apiVersion: writ.dev/v1
kind: Intent
name: bench-rungs
params:
  repo: {type: path, required: true}
exec:
  allow: ["/**"]
files:
  read: ["/**"]
  write: ["/**"]
  deny: [/etc/shadow, "**/.ssh/**", "**/.env"]
network:
  connect:
    allow: [{cidr: 127.0.0.0/8}]
on_violation: [alert]
mode: enforce
EOF
bench_root_intents "$out/bench-rungs.yaml" "$out/policies"
W() { WRIT_SOCKET="$out/run/writd.sock" "$bin/writ" "$@"; }

args_of() {  # WORKLOAD
  case "$1" in
    open) echo "open $n_open --file $out/repo/file" ;;
    exec) echo "exec $n_exec --exe /bin/true" ;;
    connect) echo "connect $n_connect --port $port" ;;
    getppid) echo "getppid $n_getppid" ;;
  esac
}
# CPU microseconds per operation from a workload's result line.
cpu_us() {
  awk '/^workload=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         if (v["complete"] != 1) print "warning: stopped early: " $0 > "/dev/stderr"
         printf "%.3f\n", (v["user_s"] + v["sys_s"]) * 1e6 / v["ops"]; found = 1 }
       END { if (!found) exit 1 }'
}
outside() {  # WORKLOAD: in a cgroup of no task
  # shellcheck disable=SC2046
  bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$load_cg" "$bin/workload" $(args_of "$1") \
    --max-seconds 300 | cpu_us
}
in_task() {  # WORKLOAD: inside an enforce-mode task
  # shellcheck disable=SC2046
  W run --allow-root --agent spiffe://example.org/bench --intent bench-rungs --param repo="$out/repo" \
    -- "$bin/workload" $(args_of "$1") --max-seconds 300 2>>"$out/run.log" | cpu_us \
    || { echo "bench/rungs.sh: writ run failed; $out/run.log:" >&2; tail -5 "$out/run.log" >&2; exit 1; }
}

lsm_loads=""
start() {  # tp|lsm
  rm -rf "$out/run" "$out/state"
  bench_writd_yaml "$out" "$subtree" enforce "bpf_lsm: $([[ $1 == tp ]] && echo off || echo auto)"
  bench_writd_start "$bin" "$out"
  local st
  st="$(W status)"
  if [[ $1 == lsm && -z $lsm_loads ]]; then
    if grep -qE '^  lsm: BPF-LSM .* active$' <<<"$st"; then
      lsm_loads=1
    else
      lsm_loads=0
      echo "bench/rungs.sh: the LSM rung does not load here: $(grep -m1 'lsm: BPF-LSM' <<<"$st")" >&2
    fi
  fi
}

warm_up() {  # PLACEMENT: every workload once, short, untimed
  local sv_o=$n_open sv_e=$n_exec sv_c=$n_connect sv_g=$n_getppid w
  n_open=$((n_open / 10 + 1)) n_exec=$((n_exec / 10 + 1)) n_connect=$((n_connect / 10 + 1))
  n_getppid=$((n_getppid / 10 + 1))
  for w in $workloads; do "$1" "$w" >/dev/null; done
  n_open=$sv_o n_exec=$sv_e n_connect=$sv_c n_getppid=$sv_g
}

workloads="open exec connect getppid"
kernel="$(uname -r)"
lsms="$(cat /sys/kernel/security/lsm 2>/dev/null || echo '?')"
echo "bench/rungs.sh: kernel $kernel, lsm=$lsms, $rounds rounds, open $n_open, exec $n_exec, connect $n_connect, getppid $n_getppid" >&2
: >"$out/results.tsv"
configs=(none tp lsm)
for ((r = 1; r <= rounds; r++)); do
  for ((i = 0; i < 3; i++)); do
    c=${configs[$(((r - 1 + i) % 3))]}
    if [[ $c == none ]]; then
      sleep 2
      warm_up outside
      for w in $workloads; do
        printf '%s\tnone\t%s\t%s\n' "$r" "$w" "$(outside "$w")" >>"$out/results.tsv"
      done
      continue
    fi
    [[ $c == lsm && $lsm_loads == 0 ]] && continue
    start "$c"
    if [[ $c == lsm && $lsm_loads == 0 ]]; then bench_writd_stop; continue; fi
    sleep 2  # start-up work (policy compile, first records) out of the timing
    warm_up outside
    warm_up in_task
    for w in $workloads; do
      printf '%s\t%s-out\t%s\t%s\n' "$r" "$c" "$w" "$(outside "$w")" >>"$out/results.tsv"
      printf '%s\t%s-task\t%s\t%s\n' "$r" "$c" "$w" "$(in_task "$w")" >>"$out/results.tsv"
    done
    bench_writd_stop
  done
  echo "bench/rungs.sh: round $r done" >&2
done

awk -F'\t' -v lsm="${lsm_loads:-0}" '
  function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  { k = $2 SUBSEP $3; n[k]++; v[k, n[k]] = $4 }
  END {
    split("none tp-out lsm-out tp-task lsm-task", cfgs, " ")
    nw = split("open exec connect getppid", ws, " ")
    printf "%-8s", "us/op"; for (c = 1; c <= 5; c++) printf " %10s", cfgs[c]; printf "\n"
    for (w = 1; w <= nw; w++) {
      for (c = 1; c <= 5; c++) {
        k = cfgs[c] SUBSEP ws[w]; delete a
        for (i = 1; i <= n[k]; i++) a[i] = v[k, i]
        med[c, w] = n[k] ? median(a, n[k]) : -1
      }
      printf "%-8s", ws[w]
      for (c = 1; c <= 5; c++) printf(med[c, w] < 0 ? " %10s" : " %10.2f", med[c, w] < 0 ? "n/a" : med[c, w])
      printf "\n"
    }
    printf "%-8s", "ratio"; for (c = 1; c <= 5; c++) printf " %10s", cfgs[c]; printf "\n"
    for (w = 1; w <= nw; w++) {
      printf "%-8s", ws[w]
      for (c = 1; c <= 5; c++) printf(med[c, w] < 0 ? " %10s" : " %10.3f", med[c, w] < 0 ? "n/a" : med[c, w] / med[1, w])
      printf "\n"
    }
    line = "rungs"
    for (w = 1; w <= nw; w++) {
      line = line (w > 1 ? ";" : "") " " ws[w]
      for (c = 2; c <= 5; c++)
        line = line " " cfgs[c] "=" (med[c, w] < 0 ? "n/a" : sprintf("%.3f", med[c, w] / med[1, w]))
    }
    print line
  }' "$out/results.tsv"

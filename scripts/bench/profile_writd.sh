#!/usr/bin/env bash
# Instructions per judged event in writd, counted with callgrind (docs/performance.md, "Instructions
# per event in writd"). Runs writd under `valgrind --tool=callgrind` twice -- once with a small and once
# with a large `workload open` run inside a coding-agent task (monitor mode, JSONL to a file) -- and
# prints the marginal count per event between the two, in total and per function (inclusive), so that
# start-up and shutdown cancel out. Callgrind counts instructions, not time: the numbers repeat to a
# few instructions on a loaded machine.
#
#   sudo scripts/bench/profile_writd.sh [--build-dir DIR] [--small N] [--large N] [--out DIR]
#                                 [--ocsf] [--top K]
#     --ocsf   add an OCSF file sink next to the JSONL events file (both encoders run per event)
#     --reuse  only re-analyse the callgrind files already in --out DIR
#
# Needs root (writd loads BPF), valgrind, and the targets writd, writ and workload built in DIR.
# Each writd gets its own cgroup subtree, run and state dirs; everything is removed on exit.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/lib.sh"
root="$bench_root"
build="$root/build"
small=10000
large=50000
out=""
ocsf=0
top=25
reuse=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --small) small="$2"; shift 2 ;;
    --large) large="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --ocsf) ocsf=1; shift ;;
    --top) top="$2"; shift 2 ;;
    --reuse) reuse=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "profile_writd: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "profile_writd: needs root (writd loads BPF)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "profile_writd: valgrind not installed" >&2; exit 1; }
for b in writd writ workload; do
  [[ -x "$build/bin/$b" ]] || { echo "profile_writd: $build/bin/$b missing (build it first)" >&2; exit 1; }
done
(( small > 0 && large > small )) || { echo "profile_writd: need 0 < --small < --large" >&2; exit 2; }
[[ -n "$out" ]] || out="$(mktemp -d /tmp/writ-profile-XXXXXX)"
mkdir -p "$out"
cg2="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)"
[[ -n "$cg2" ]] || { echo "profile_writd: no cgroup2 mount" >&2; exit 1; }

writd_pid=""
subtree=""
cleanup() {
  if [[ -n "$writd_pid" ]] && kill -0 "$writd_pid" 2>/dev/null; then
    kill -TERM "$writd_pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$writd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$writd_pid" 2>/dev/null || true
  fi
  if [[ -n "$subtree" ]]; then
    rmdir "$cg2/$subtree"/* "$cg2/$subtree" 2>/dev/null || true
    rm -rf "/sys/fs/bpf/$subtree" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# status_field DIR KEY: a counter from `writ status` ("events by kind:" sums the judged records).
judged() {
  "$build/bin/writ" --socket "$1/run/writd.sock" status 2>/dev/null |
    awk '/^events by kind:/ {for (i = 4; i <= NF; i++) {split($i, kv, "="); n += kv[2]}} END {print n + 0}'
}
kdrops() {
  "$build/bin/writ" --socket "$1/run/writd.sock" status 2>/dev/null |
    awk '/^drops by kind:/ {for (i = 4; i <= NF; i++) {split($i, kv, "="); n += kv[2]}} END {print n + 0}'
}

# run_one N: writd under callgrind, one task doing N opens; leaves $out/cg.N and $out/N.judged.
run_one() {
  local n="$1" d="$out/run-$1"
  rm -rf "$d"
  mkdir -p "$d/policies" "$d/repo" "$d/state" "$d/run"
  chmod 0755 "$d"
  bench_root_intents "$root/policies/coding-agent.yaml" "$d/policies"
  echo "profile file" >"$d/repo/file"
  subtree="writ-prof-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
  {
    echo "mode: monitor"
    echo "policies: $d/policies"
    echo "state_dir: $d/state"
    echo "run_dir: $d/run"
    echo "events: $d/events.jsonl"
    echo "cgroup_subtree: $subtree"
    echo "bpf_pin_dir: none"
    # Under valgrind writd runs ~50x slower: a ring big enough that no record of the run is dropped.
    echo "ring_buffer_bytes: 268435456"
    if (( ocsf )); then
      echo "sinks:"
      echo "  - {type: file, format: ocsf, path: $d/ocsf.jsonl}"
    fi
  } >"$d/writd.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$n" --separate-threads=no \
    "$build/bin/writd" --config "$d/writd.yaml" >"$d/writd.out" 2>"$d/writd.err" &
  writd_pid=$!
  for _ in $(seq 1 600); do
    "$build/bin/writ" --socket "$d/run/writd.sock" status >/dev/null 2>&1 && break
    kill -0 "$writd_pid" 2>/dev/null || { echo "writd died:"; tail -20 "$d/writd.err"; exit 1; }
    sleep 0.2
  done
  local before; before="$(judged "$d")"
  "$build/bin/writ" --socket "$d/run/writd.sock" run --allow-root --agent spiffe://example.org/profile \
    --intent coding-agent --param "repo=$d/repo" -- \
    "$build/bin/workload" open "$n" --file "$d/repo/file" >"$d/workload.out" 2>"$d/workload.err"
  # Wait (bounded) until writd has judged everything (the count stops moving for 2 s).
  local last=-1 cur stable=0
  for _ in $(seq 1 1200); do
    cur="$(judged "$d")"
    if [[ "$cur" == "$last" ]]; then stable=$((stable + 1)); else stable=0; fi
    (( stable >= 4 )) && break
    last="$cur"
    sleep 0.5
  done
  local drops; drops="$(kdrops "$d")"
  echo $((cur - before)) >"$out/$n.judged"
  echo "run $n opens: judged $((cur - before)) records, kernel drops $drops"
  (( drops == 0 )) || { echo "profile_writd: kernel drops in the $n run: counts would be wrong" >&2; exit 1; }
  kill -TERM "$writd_pid"
  wait "$writd_pid" || true
  writd_pid=""
  rmdir "$cg2/$subtree" 2>/dev/null || true
  subtree=""
}

if (( ! reuse )); then
  run_one "$small"
  run_one "$large"
fi

js="$(cat "$out/$small.judged")"
jl="$(cat "$out/$large.judged")"
events=$((jl - js))
for n in "$small" "$large"; do
  callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$out/cg.$n" >"$out/annotate.$n" 2>/dev/null
done
# The function list of an annotation: "1,234,567 (12.3%)  file:function [obj]" -> "function<TAB>count",
# one line per function (the largest count when inlining lists a function under several files).
flat() {
  awk '/file:function/ {getline; f = 1; next}
       f && NF == 0 {exit}
       f {c = $1; gsub(",", "", c); line = $0; sub(/^ *[0-9,]+ +\([ 0-9.%]+\) +/, "", line);
          sub(/ \[[^]]*\]$/, "", line); sub(/^[^:]*:/, "", line);
          if (!(line in m) || c + 0 > m[line] + 0) m[line] = c}
       END {for (k in m) print k "\t" m[k]}' "$1" | sort -t $'\t' -k1,1
}
total() { awk '/PROGRAM TOTALS/ {c = $1; gsub(",", "", c); print c; exit}' "$1"; }
ts="$(total "$out/annotate.$small")"
tl="$(total "$out/annotate.$large")"
echo
echo "marginal over $events judged records ($jl - $js):"
awk -v a="$ts" -v b="$tl" -v e="$events" 'BEGIN {printf "  total per judged event: %.0f instructions\n", (b - a) / e}'
echo "  per function (inclusive, instructions per event, top $top):"
join -t $'\t' <(flat "$out/annotate.$small") <(flat "$out/annotate.$large") |
  awk -F '\t' -v e="$events" '{printf "%10.0f  %s\n", ($3 - $2) / e, $1}' | sort -rn | head -n "$top"
echo "(callgrind files and annotations in $out)"

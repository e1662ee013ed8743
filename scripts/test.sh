#!/usr/bin/env bash
# Fresh machine -> every test: install dependencies, build, run each CTest tier (unit, bpf, e2e; then ASan+UBSan, TSan and libFuzzer builds).
# Exits non-zero if any test fails. Privileged tiers report SKIPPED with a reason when they cannot run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WRIT_BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
start=$(date +%s)
"$root/scripts/build.sh"
echo "build: $(( $(date +%s) - start ))s"

status=0
summary=()
ran=()  # tiers run by this invocation: the totals must not count a log an earlier run left behind
for label in unit bpf e2e; do  # the fuzz label lives in build-fuzz (fuzz-libfuzzer tier below)
  t0=$(date +%s)
  log="$build/ctest-$label.log"
  set +e
  (cd "$build" && ctest -L "^${label}\$" --output-on-failure --timeout 600 -j1) >"$log" 2>&1
  rc=$?
  set -e
  # ctest prints "N% tests passed, M tests failed out of K"; keep it per tier.
  line=$(grep -E "tests passed|No tests were found" "$log" | tail -1 || true)
  skipped=$(grep -cE "\*\*\*Skipped|\[  SKIPPED \]" "$log" || true)
  echo "== $label: ${line:-no result} (skipped: $skipped, $(( $(date +%s) - t0 ))s)"
  if [[ $rc -ne 0 ]]; then
    status=1
    grep -E "Failed|\*\*\*Exception|\*\*\*Timeout" "$log" | head -20 || true
    tail -40 "$log"
  fi
  summary+=("$label: ${line:-no result}")
  ran+=("$label")
done

# Hardening tiers, each in a build dir of its own (never the main build's objects):
#   asan-unit: the unit tier built with -DWRIT_SANITIZE=address,undefined (g++); e2e stays out to keep
#              the whole script well under 25 minutes on 2 cores (docs/threat-model.md).
#   tsan-unit: the unit tests that run threads (sinks with their delivery threads and spools, the
#              credential service, the journal) built with -DWRIT_SANITIZE=thread at -O1; Debian's
#              uninstrumented Abseil mutexes are taught to TSan by tests/tsan/absl_tsan_shim.cc.
#   fuzz:      libFuzzer targets (clang, -DWRIT_FUZZ=ON), each run WRIT_FUZZ_SECONDS (60) under ctest.
extra_tier() {  # NAME BUILD_DIR CMAKE_ARGS TARGETS CTEST_ARGS (CMAKE_ARGS is word-split)
  local name=$1 dir=$2 cargs=$3 targets=$4 targs=$5 t0 rc line
  t0=$(date +%s)
  local log="$build/ctest-$name.log"
  set +e
  { cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo $cargs >/dev/null &&
    cmake --build "$dir" --target $targets -j"$(nproc)" >/dev/null &&
    (cd "$dir" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest $targs --output-on-failure \
      --timeout 900 -j1); } >"$log" 2>&1
  rc=$?
  set -e
  line=$(grep -E "tests passed|No tests were found" "$log" | tail -1 || true)
  echo "== $name: ${line:-no result} ($(( $(date +%s) - t0 ))s)"
  if [[ $rc -ne 0 ]]; then status=1; tail -40 "$log"; fi
  summary+=("$name: ${line:-no result}")
  ran+=("$name")
}
if [[ "${WRIT_SKIP_HARDENING:-0}" != 1 ]]; then
  extra_tier asan-unit "$root/build-asan" "-DWRIT_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug" \
    "sinks_unit_test creds_unit_test intent_unit_test core_unit_test journal_unit_test intent_subset_test net_unit_test" \
    "-L ^unit\$"
  # gtest_discover_tests adds a failing <target>_NOT_BUILT test for targets this tier does not build.
  # WorkloadApiTest is left out: under TSan, Debian's grpc++ aborts serializing a ValidateJWTSVID reply
  # (ProtoBufferWriter: byte_count_ < total_size_) inside its own header/library code; not yet understood.
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan/suppressions.txt"
  extra_tier tsan-unit "$root/build-tsan" \
    "-DWRIT_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-g -DCMAKE_CXX_FLAGS_DEBUG=-O1" \
    "sinks_unit_test creds_unit_test journal_unit_test" "-L ^unit\$ -E _NOT_BUILT|^WorkloadApiTest\."
  if command -v clang++ >/dev/null; then
    extra_tier fuzz-libfuzzer "$root/build-fuzz" \
      "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DWRIT_FUZZ=ON" writ_fuzz_targets \
      "-L ^fuzz\$"
  fi
fi

passed=0; failed=0; skipped=0; broken=()
for label in "${ran[@]}"; do
  log="$build/ctest-$label.log"
  # A tier whose build or cmake failed has no ctest tally: its tests are neither passed nor failed.
  grep -qE "out of [0-9]+" "$log" || broken+=("$label")
  t=$(grep -oE "out of [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
  f=$(grep -oE "[0-9]+ tests failed" "$log" | tail -1 | grep -oE "^[0-9]+" || echo 0)
  s=$(grep -cE "\*\*\*Skipped" "$log" || true)
  passed=$((passed + t - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
done
echo
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed, $skipped skipped${broken:+; no result from: ${broken[*]}}"
exit $status

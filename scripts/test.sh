#!/usr/bin/env bash
# Fresh machine -> every test: install dependencies, build, run each CTest tier (unit, bpf, e2e, fuzz).
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
for label in unit bpf e2e fuzz; do
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
done

passed=0; failed=0; skipped=0
for label in unit bpf e2e fuzz; do
  log="$build/ctest-$label.log"
  [[ -f $log ]] || continue
  t=$(grep -oE "out of [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0)
  f=$(grep -oE "[0-9]+ tests failed" "$log" | tail -1 | grep -oE "^[0-9]+" || echo 0)
  s=$(grep -cE "\*\*\*Skipped" "$log" || true)
  passed=$((passed + t - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
done
echo
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

#!/usr/bin/env bash
# Sets everything up, runs every test suite, and ends with one line: N passed, N failed, N skipped.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh --tests || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
setup_seconds=$SECONDS
# The suites run with the same environment as the set-up (NUGET_FEED, WAAL_FASHION_MNIST, oneDNN's limit).
source build/env.sh

passed=0; failed=0; skipped=0; status=0
times=("$(printf '%-12s %4d s' set-up "$setup_seconds")")
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# Image folders the suites write are decoded into a cache of their own, and every temporary folder a test makes
# (runs, packed feeds of about 1 GB, Slurm clusters) goes under the run's own TMPDIR: all removed at the end, also
# when a test is killed before its own clean-up.
export WAAL_IMAGE_CACHE="$logs/image-cache"
export TMPDIR="$logs/tmp"
mkdir -p "$TMPDIR"
# Like /tmp: the permission tests run `waal` as nobody, who must reach the folders they make there.
chmod 755 "$logs"
chmod 1777 "$TMPDIR"
for suite in Core Data Learning Strategies Experiments Cli Label Facade Build; do
  dll="tests/Waal.$suite.Tests/bin/Release/net10.0/Waal.$suite.Tests.dll"
  echo "=== Waal.$suite.Tests"
  suite_started=$SECONDS
  # Expecto writes terminal escapes even without colours: strip them so the log reads plainly.
  dotnet "$dll" --no-spinner --colours 0 2>&1 | sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$logs/$suite.log"
  rc=${PIPESTATUS[0]}
  times+=("$(printf '%-12s %4d s' "$suite" $((SECONDS - suite_started)))")
  echo
  line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$logs/$suite.log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "Waal.$suite.Tests: no summary line (exit code $rc): counted as one failure"
    failed=$((failed + 1)); status=1; continue
  fi
  read -r p f s <<<"$(echo "$line" | awk '{print $1, $3, $5}')"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$rc" -eq 0 ] || status=1
done

# Formatting is part of the suite: Fantomas (the local tool, settings in .editorconfig) must find nothing to change.
echo "=== Formatting (dotnet fantomas --check src tests bench)"
suite_started=$SECONDS
if dotnet fantomas --check src tests bench; then
  echo "formatting: every F# file as Fantomas writes it"
  passed=$((passed + 1))
else
  echo "formatting: the files above need 'dotnet fantomas src tests bench'"
  failed=$((failed + 1)); status=1
fi

times+=("$(printf '%-12s %4d s' Formatting $((SECONDS - suite_started)))")

# Where the time went: every run shows it (the set-up's own steps are printed as they finish).
echo "=== Seconds per suite (all: $SECONDS s, set-up included)"
printf '  %s\n' "${times[@]}"
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

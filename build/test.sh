#!/usr/bin/env bash
# Sets everything up, runs every test suite, and ends with one line: N passed, N failed, N skipped.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
# The labelling page's tests drive Debian's chromium through Playwright (never Playwright's own browser download).
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian's chromium (the labelling page's browser tests)"
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q chromium >/dev/null || { echo "error SETUP004: apt-get install chromium failed" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
  else
    echo "error SETUP004: /usr/bin/chromium: not found and apt-get is not usable here; install chromium" >&2
    echo "0 passed, 1 failed, 0 skipped"; exit 1
  fi
fi

# The backbone tests export a model with Debian's PyTorch and compare its embeddings with ours (never a download).
if ! /usr/bin/python3 -c "import torch, PIL" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian's python3-torch and python3-pil (the backbone tests' PyTorch side)"
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q python3-torch python3-pil >/dev/null || { echo "error SETUP005: apt-get install python3-torch python3-pil failed" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
  else
    echo "error SETUP005: /usr/bin/python3 cannot import torch and PIL, and apt-get is not usable here; install python3-torch and python3-pil" >&2
    echo "0 passed, 1 failed, 0 skipped"; exit 1
  fi
fi

# The suites run with the same environment as the set-up (NUGET_FEED, WAAL_FASHION_MNIST, oneDNN's limit).
source build/env.sh

passed=0; failed=0; skipped=0; status=0
logs="$(mktemp -d)"
# Image folders the suites write are decoded into a cache of their own, removed at the end.
export WAAL_IMAGE_CACHE="$logs/image-cache"
for suite in Core Data Learning Strategies Experiments Cli Label Facade Build; do
  dll="tests/Waal.$suite.Tests/bin/Release/net10.0/Waal.$suite.Tests.dll"
  echo "=== Waal.$suite.Tests"
  # Expecto writes terminal escapes even without colours: strip them so the log reads plainly.
  dotnet "$dll" --no-spinner --colours 0 2>&1 | sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$logs/$suite.log"
  rc=${PIPESTATUS[0]}
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
rm -rf "$logs"

# Formatting is part of the suite: Fantomas (the local tool, settings in .editorconfig) must find nothing to change.
echo "=== Formatting (dotnet fantomas --check src tests bench)"
if dotnet fantomas --check src tests bench; then
  echo "formatting: every F# file as Fantomas writes it"
  passed=$((passed + 1))
else
  echo "formatting: the files above need 'dotnet fantomas src tests bench'"
  failed=$((failed + 1)); status=1
fi

[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

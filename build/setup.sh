#!/usr/bin/env bash
# Sets everything up: dotnet tools (paket, fantomas), packages, the Debian packages, a Release build.
#   bash build/setup.sh           what the main job needs: the data, the waal command and the build tasks
#   bash build/setup.sh --tests   what the test command needs: also chromium, PyTorch, Slurm, the whole solution
#   bash build/setup.sh --all     the whole solution without the test-only Debian packages (build/pack.sh)
# Safe to run again; each step is a no-op when already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source build/env.sh

# The first minute of a fresh clone says what it is doing (and how long each step took).
step() { echo "setup: $1"; step_started=$SECONDS; }
done_step() { echo "setup: done in $((SECONDS - step_started)) s"; }

step "restoring the local dotnet tools (Paket, Fantomas)"
dotnet tool restore >/dev/null
done_step

# Debian packages: what this command needs and the machine lacks, in one apt-get run (nothing when all are there).
# The main job needs the data; the test command (setup.sh --tests) also the browser of the labelling page's tests,
# Debian's PyTorch for the backbone tests and Slurm for the cluster tests.
missing=()
if [ ! -f "$WAAL_FASHION_MNIST/train-images-idx3-ubyte.gz" ]; then
  if [ "$WAAL_FASHION_MNIST" = /usr/share/datasets/fashion-mnist ]; then
    missing+=(dataset-fashion-mnist)
  else
    echo "error SETUP003: $WAAL_FASHION_MNIST/train-images-idx3-ubyte.gz: Fashion-MNIST not found (WAAL_FASHION_MNIST);" >&2
    echo "  put the four official IDX .gz files in that folder, or unset WAAL_FASHION_MNIST to use Debian's package." >&2
    exit 1
  fi
fi
if [ "${1:-}" = --tests ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  /usr/bin/python3 -c "import torch, PIL" >/dev/null 2>&1 || missing+=(python3-torch python3-pil)
  { command -v slurmctld && command -v slurmd && command -v munged; } >/dev/null 2>&1 || missing+=(slurm-wlm munge)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error SETUP004: Debian packages missing: ${missing[*]}; apt-get is not usable here, install them by hand" >&2
    exit 1
  fi
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  step "installing the Debian packages this needs: ${missing[*]}"
  { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"; } >/tmp/waal-setup-apt.log 2>&1 \
    || { echo "error SETUP004: apt-get install ${missing[*]} failed; see /tmp/waal-setup-apt.log" >&2; exit 1; }
  done_step
fi

# What to build: the main job needs the runner and the build tasks (build/main.slnf, one project graph); the test
# command and the packages need the whole solution.
if [ "${1:-}" = --tests ] || [ "${1:-}" = --all ]; then
  target=Waal.Functional.sln; what="the solution (libraries, the waal command, tests, benchmark)"
else
  target=build/main.slnf; what="the waal command and the build tasks (the main job's; --tests builds everything)"
fi
step "restoring the NuGet packages for $what (from the package cache; a first time downloads about 1 GB, libtorch most of it)"
dotnet restore "$target" -v quiet >/dev/null
done_step
step "building $what in Release"
dotnet build "$target" -c Release --no-restore -v quiet -nologo -clp:NoSummary -warnaserror
done_step
# The experiments targets rebuild the runner when a source is newer than this stamp: the build above is it.
touch src/Waal.Cli/bin/Release/net10.0/.waal-tools-built

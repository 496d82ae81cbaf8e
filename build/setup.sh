#!/usr/bin/env bash
# Sets everything up: dotnet tools (paket, fantomas), packages, the Fashion-MNIST data, a Release build.
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

if [ ! -f "$WAAL_FASHION_MNIST/train-images-idx3-ubyte.gz" ]; then
  if [ "$WAAL_FASHION_MNIST" = /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian's dataset-fashion-mnist (the data lands in $WAAL_FASHION_MNIST)"
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null
  else
    echo "error SETUP003: $WAAL_FASHION_MNIST/train-images-idx3-ubyte.gz: Fashion-MNIST not found and apt-get is not usable here;" >&2
    echo "  put the four official IDX .gz files in a folder and set WAAL_FASHION_MNIST to it." >&2
    exit 1
  fi
fi

step "restoring the NuGet packages (from the package cache; a first time downloads about 1 GB, libtorch most of it)"
dotnet restore Waal.Functional.sln -v quiet >/dev/null
done_step
step "building the solution in Release (libraries, the waal command, tests, benchmark)"
dotnet build Waal.Functional.sln -c Release --no-restore -v quiet -nologo -clp:NoSummary -warnaserror
done_step
# The experiments targets rebuild the runner when a source is newer than this stamp: the build above is it.
touch src/Waal.Cli/bin/Release/net10.0/.waal-tools-built

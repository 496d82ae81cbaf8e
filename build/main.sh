#!/usr/bin/env bash
# The main job: set everything up, then build experiments/quickstart.proj: WAAL and random with seed 1 under the
# recommended preset (Fashion-MNIST, pool of the first 50,000 training images, 1000 initial labels + 5 queries of
# 1000; 4 min 24-39 s measured on 2 cores with the package cache warm, set-up included) and their report. Results go to experiments/results/ (ignored
# by git). A second run finds the experiment up to date and only says so.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh
built=$SECONDS
source build/env.sh
dotnet build experiments/quickstart.proj -nologo -v:minimal -p:WaalFashionMnist="$WAAL_FASHION_MNIST"
results="$root/experiments/results"
echo
echo "rounds:         $results/quickstart-waal-seed1/rounds.csv"
echo "report:         $results/report/report.md"
echo "learning curve: $results/report/learning_curve.png"
echo "main job: $SECONDS s (set-up $built s, experiments and report $((SECONDS - built)) s) on $(getconf _NPROCESSORS_ONLN) cores: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"

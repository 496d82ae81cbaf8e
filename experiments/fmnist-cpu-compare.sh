#!/usr/bin/env bash
# The fmnist-cpu comparison: WAAL and the baselines random, entropy, kcenter, bald, seeds 1 and 2; each
# baseline at its reference budget (10 epochs over the labelled set) and compute-matched to WAAL (2 epochs of
# max(|L|,|U|) pairs' worth of steps). Results in results/fmnist-cpu/, report in results/fmnist-cpu/report/.
# About 20 minutes on 2 cores. Runs already complete are resumed (a no-op), so it can be rerun after a stop.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-results/fmnist-cpu}"
common=(--dataset fashion-mnist --pool 50000 --initial 1000 --query 1000 --rounds 5 --threads 2)
run() { # name, args...
  local dir="$out/$1"; shift
  if [ -f "$dir/progress.json" ]; then bash build/waal resume "$dir"; else bash build/waal run "${common[@]}" "$@" --out "$dir"; fi
}
for seed in 1 2; do
  run "waal-seed$seed" --strategy waal --epochs 2 --seed "$seed"
  for s in random entropy kcenter bald; do
    run "$s-reference-seed$seed" --strategy "$s" --epochs 10 --train-budget epochs --seed "$seed"
    run "$s-matched-seed$seed" --strategy "$s" --epochs 2 --train-budget match-waal --seed "$seed"
  done
done
bash build/waal report "$out"/*-seed* --out "$out/report"

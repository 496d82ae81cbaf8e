#!/usr/bin/env bash
# The main job: set everything up, run the fmnist-cpu WAAL protocol with seed 1 (Fashion-MNIST, pool of the
# first 50,000 training images, 1000 initial labels + 5 queries of 1000, 2 epochs per round; about 2 minutes
# on 2 cores), then write its report and learning curve. Results go to results/ (ignored by git).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh
source build/env.sh
out="$root/results/fmnist-cpu-waal-seed1"
bash build/waal run --dataset "fashion-mnist=$WAAL_FASHION_MNIST" --strategy waal --pool 50000 \
  --initial 1000 --query 1000 --rounds 5 --epochs 2 --seed 1 --threads 2 --out "$out" --force
bash build/waal report "$out" --out "$root/results/report"
echo
echo "rounds:         $out/rounds.csv"
echo "report:         $root/results/report/report.md"
echo "learning curve: $root/results/report/learning_curve.png"

#!/usr/bin/env bash
# A folder of images (1,500 unless told) with a ResNet-18 backbone: the one-time embedding, then each round's
# seconds, and each run's peak memory (docs/backbones.md).
# Usage: bash bench/backbone.sh [threads] [images]   (installs Debian's python3-torch and python3-torchvision when
# missing)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
threads="${1:-2}"
images="${2:-1500}"
py=/usr/bin/python3
if ! "$py" -c "import torch, torchvision, PIL" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian's python3-torch and python3-torchvision (the benchmark's backbone)"
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q python3-torch python3-torchvision python3-pil >/dev/null
  else
    echo "error BENCH001: python3 with torch, torchvision and PIL is needed; install Debian's python3-torchvision" >&2
    exit 1
  fi
fi
bash build/setup.sh --all
source build/env.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export WAAL_IMAGE_CACHE="$work/cache"
"$py" bench/backbone.py folder "$WAAL_FASHION_MNIST" "$work/photos" "$images"
"$py" bench/backbone.py resnet18 "$work"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads, $images images"
for attempt in first cached; do
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/$attempt.rss" dotnet src/Waal.Cli/bin/Release/net10.0/waal.dll run --dataset "folder=$work/photos" --backbone "$work/resnet18.pt" --strategy waal --initial 50 --query 50 \
    --rounds 3 --threads "$threads" --out "$work/run-$attempt" --force > "$work/$attempt.log" 2>&1 \
    || { cat "$work/$attempt.log"; exit 1; }
  end=$(date +%s.%N)
  echo "== $attempt run: $(echo "$end - $start" | bc) s in all, peak RSS $(( $(cat "$work/$attempt.rss") / 1024 )) MB"
  grep -E "network:|embedding .*: done" "$work/$attempt.log" || true
  # round, labelled, train/query/eval seconds, training iterations
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { printf "round %s: %s labels, %s iterations, train %.2f s, query %.2f s, evaluation %.2f s, round %.2f s, test accuracy %s\n",
      $col["round"], $col["labeled"], $col["train_iterations"], $col["train_seconds"], $col["query_seconds"],
      $col["eval_seconds"], $col["train_seconds"] + $col["query_seconds"] + $col["eval_seconds"], $col["test_accuracy"] }' \
    "$work/run-$attempt/rounds.csv"
done
# The same folder from scratch (what "auto" picks for it: the residual net at the images' own 32x32), round 0 only.
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/scratch.rss" dotnet src/Waal.Cli/bin/Release/net10.0/waal.dll run --dataset "folder=$work/photos" \
  --strategy waal --initial 50 --query 50 --rounds 0 --threads "$threads" --out "$work/run-scratch" --force > "$work/scratch.log" 2>&1 \
  || { cat "$work/scratch.log"; exit 1; }
end=$(date +%s.%N)
echo "== from scratch, no backbone: $(echo "$end - $start" | bc) s in all, peak RSS $(( $(cat "$work/scratch.rss") / 1024 )) MB"
grep -E "network:" "$work/scratch.log" || true
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { printf "round %s: %s labels, %s iterations, train %.2f s, test accuracy %s\n", $col["round"], $col["labeled"],
    $col["train_iterations"], $col["train_seconds"], $col["test_accuracy"] }' "$work/run-scratch/rounds.csv"
echo "caches: $(du -sh "$WAAL_IMAGE_CACHE" | cut -f1) (the decode cache at 256 x 256 and the embeddings)"

#!/usr/bin/env bash
# The main job: set everything up, then validate and summarise the Fashion-MNIST training and test sets.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash build/setup.sh
source build/env.sh
echo "== Fashion-MNIST training set ($WAAL_FASHION_MNIST)"
bash build/waal data inspect "$WAAL_FASHION_MNIST/train-images-idx3-ubyte.gz"
echo "== Fashion-MNIST test set"
bash build/waal data inspect "$WAAL_FASHION_MNIST/t10k-images-idx3-ubyte.gz"

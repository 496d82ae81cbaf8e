#!/usr/bin/env bash
# The batch queries' speed (issue 35): networks trained once on 1,000 Fashion-MNIST labels, then a query of
# k = 3,000 from the rest of the pool, timed for transport (its defaults, and with every unlabelled item as the
# pool measure), mmd, BADGE, k-center and margin on the same networks; then transport and margin on a pool of
# 10^6 (noisy copies of the 50,000 pool images, as --repeat makes them), where BADGE is not run (its k-means++
# over 10^6 gradient embeddings takes hours here). Prints CSV rows and the ratio transport / BADGE.
# Usage: bash bench/batch-query.sh [THREADS]   (about 6 minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
threads="${1:-2}"
bash build/setup.sh --all >/dev/null
source build/env.sh
bench="bench/Waal.Bench/bin/Release/net10.0/Waal.Bench.dll"
out="$(mktemp)"
dotnet "$bench" batch-query "$WAAL_FASHION_MNIST" "$threads" 50000 3000 \
  margin badge kcenter transport transport-all-targets mmd | tee "$out"
dotnet "$bench" batch-query "$WAAL_FASHION_MNIST" "$threads" 1000000 3000 margin transport | tail -n +2 | tee -a "$out"
awk -F, '$1 == "badge" && $3 == 50000 { b = $5 } $1 == "transport" && $2 == "default" && $3 == 50000 { t = $5 }
  END { if (b > 0) printf "transport / BADGE at 50,000 and k = 3,000: %.2f (goal: at most 0.25)\n", t / b }' "$out"
rm -f "$out"

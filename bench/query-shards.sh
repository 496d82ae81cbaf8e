#!/usr/bin/env bash
# `waal query` in shards (docs/cluster.md): one trained round 0 on a Fashion-MNIST pool (50,000 unless told), then
# the next batch in one process and in 4 shards, for WAAL and margin, with 1 thread and with 2. Prints, per row,
# the items scored, the scoring seconds (the process's own, data loading included) and the items per second per
# thread, the merge's seconds, and whether the merged batch equals the one-process batch.
# Usage: bash bench/query-shards.sh [pool]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
pool="${1:-50000}"
bash build/setup.sh --all >/dev/null
source build/env.sh
waal="$root/src/Waal.Cli/bin/Release/net10.0/waal.dll"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); pool $pool"
printf '%-8s %7s %10s %10s %12s %12s %9s %s\n' strategy threads unlabelled "1 process" "items/s/thr" "4 shards" "merge" "equal"
for strategy in waal margin; do
  for threads in 1 2; do
    run="$work/$strategy-$threads"
    dotnet "$waal" run --dataset "fashion-mnist=$WAAL_FASHION_MNIST" --strategy "$strategy" --seed 1 --pool "$pool" \
      --initial 100 --query 1000 --rounds 0 --epochs 1 --threads "$threads" --out "$run" >/dev/null
    # The data load alone: a query of a pool with nothing left to score is not possible, so the load is timed as
    # the difference between scoring all and scoring shard 0 of 1000 (a few hundred items).
    one=$(seconds dotnet "$waal" query "$run" --out "$work/one.json")
    load=$(seconds dotnet "$waal" query "$run" --shard 0/1000 --out "$work/tiny.bin")
    unlabelled=$((pool - 100))
    shards=0
    for s in 0 1 2 3; do
      t=$(seconds dotnet "$waal" query "$run" --shard "$s/4" --out "$work/shard-$s.bin")
      shards=$(echo "$shards + $t" | bc)
    done
    merge=$(seconds dotnet "$waal" query "$run" --merge "$work"/shard-?.bin --out "$work/merged.json")
    rate=$(echo "$unlabelled / ($one - $load) / $threads" | bc)
    equal=no; [ "$(grep indices "$work/one.json")" = "$(grep indices "$work/merged.json")" ] && equal=yes
    printf '%-8s %7s %10s %9.1fs %12s %11.1fs %8.1fs %s\n' "$strategy" "$threads" "$unlabelled" "$one" "$rate" "$shards" "$merge" "$equal"
  done
done
echo "(4 shards: the four processes one after another, each loading the data; load alone: the last 'shard 0/1000' run)"

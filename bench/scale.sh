#!/usr/bin/env bash
# The folder-scale rows: 50,000 and 200,000 generated grey PNGs (Fashion-MNIST's training images, repeated) read
# as folder datasets and scored by a fresh network, each size in a process of its own; prints the rows and the
# peak-RSS difference. The folders (about 0.5 and 1.6 GB of small files) and the decode cache go under
# bench/out/ (ignored by git). Several minutes the first time (writing and decoding the files).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
threads="${WAAL_BENCH_THREADS:-2}"
bash build/setup.sh --all
source build/env.sh
mkdir -p bench/out
export WAAL_IMAGE_CACHE="$root/bench/out/image-cache"
dll=bench/Waal.Bench/bin/Release/net10.0/Waal.Bench.dll
for n in 50000 200000; do
  # The first-time costs (writing the files, decoding them into the cache), then the measurement in a fresh
  # process, as every later run pays it.
  dotnet "$dll" scale-prepare "$WAAL_FASHION_MNIST" "$n" "$threads" bench/out
  dotnet "$dll" scale "$WAAL_FASHION_MNIST" "$n" "$threads" bench/out
done 2> >(grep -v NNPACK >&2) | tee bench/out/scale.csv
awk -F, '$2 ~ /_peak_rss_mb$/ { split($2, p, "_"); peak[p[2]] = $3 }
  END { if ((50000 in peak) && (200000 in peak)) printf "peak RSS 200,000 minus 50,000 images: %.1f MB\n", peak[200000] - peak[50000] }' bench/out/scale.csv

#!/usr/bin/env bash
# The side-by-side benchmark: the same Fashion-MNIST WAAL workload in our code (bench/Waal.Bench, the library's
# own trainers and scoring) and in PyTorch (bench/torch_bench.py, mirroring it step for step), one after the
# other on this machine, with the same threads. Prints a table of ours / theirs, writes bench/out/results.csv,
# and ends with `worst time ratio ours/theirs: R` over rows a-d. Every time row is the best of three runs on
# both sides. Two to three minutes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
threads="${WAAL_BENCH_THREADS:-2}"

# Debian's python3-torch installs for the system interpreter, which may not be the first python3 on PATH.
py=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import torch" >/dev/null 2>&1; then py="$candidate"; break; fi
done
# Like the test command's chromium: installed when missing and apt-get is usable.
if [ -z "$py" ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian's python3-torch (PyTorch, the benchmark's other side)"
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q python3-torch >/dev/null || true
  /usr/bin/python3 -c "import torch" >/dev/null 2>&1 && py=/usr/bin/python3
fi
if [ -z "$py" ]; then
  echo "error BENCH001: PyTorch is not installed for any python3 here and apt-get could not install it; install Debian's: apt-get install -y python3-torch" >&2
  exit 1
fi

bash build/setup.sh --all
source build/env.sh
mkdir -p bench/out
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads"
echo "PyTorch $("$py" -c 'import torch; print(torch.__version__)'), TorchSharp 0.107.0 with libtorch 2.10.0"
dotnet bench/Waal.Bench/bin/Release/net10.0/Waal.Bench.dll "$WAAL_FASHION_MNIST" "$threads" > bench/out/ours.csv
# The same C heap settings as our side (Waal.Learning.Device.keepFreedMemory sets them with mallopt).
MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 \
  "$py" bench/torch_bench.py "$WAAL_FASHION_MNIST" "$threads" > bench/out/theirs.csv

# Rates: the time ratio ours/theirs is theirs' rate over ours (below 1: we are faster). Memory: ours over theirs.
awk -F, '
  FNR == NR { ours[$2] = $3; unit[$2] = $4; order[++n] = $2; next }
  { theirs[$2] = $3 }
  END {
    label["waal_train_iterations_per_s"] = "(a) WAAL training (step A + step B with GP)"
    label["waal_query_images_per_s"] = "(b) WAAL query scoring, 49,000 images"
    label["test_prediction_images_per_s"] = "(c) test prediction, 10,000 images"
    label["plain_train_iterations_per_s"] = "(d) plain cross-entropy training"
    label["peak_rss_mb"] = "(e) peak RSS"
    print "metric,ours,theirs,unit,ours_over_theirs" > "bench/out/results.csv"
    printf "%-46s %12s %12s %8s %12s\n", "", "ours", "theirs", "unit", "ours/theirs"
    worst = 0
    for (i = 1; i <= n; i++) {
      m = order[i]
      if (!(m in theirs)) {   # ours-only rows (e.g. the scoring batch-size sweep)
        printf "%-46s %12.1f %12s %8s\n", m, ours[m], "-", unit[m]
        printf "%s,%s,,%s,\n", m, ours[m], unit[m] >> "bench/out/results.csv"
        continue
      }
      if (m == "peak_rss_mb") { r = ours[m] / theirs[m]; what = "memory" }
      else { r = theirs[m] / ours[m]; what = "time"; if (r > worst) worst = r }
      printf "%-46s %12.1f %12.1f %8s %8.2f %s\n", label[m], ours[m], theirs[m], unit[m], r, what
      printf "%s,%s,%s,%s,%.4f\n", m, ours[m], theirs[m], unit[m], r >> "bench/out/results.csv"
    }
    printf "worst time ratio ours/theirs: %.2f\n", worst
  }' bench/out/ours.csv bench/out/theirs.csv

# Sourced by the other scripts: quiet .NET, and the package feed taken from this machine's own NuGet
# configuration (paket.dependencies says `source %NUGET_FEED%`, so no registry host is in the repository).
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if ! command -v dotnet >/dev/null 2>&1; then
  echo "error SETUP001: dotnet: the .NET 10 SDK is not on PATH; install it (https://dot.net), then rerun." >&2
  exit 1
fi
if [ -z "${NUGET_FEED:-}" ]; then
  NUGET_FEED="$(dotnet nuget list source --format short 2>/dev/null | awk '$1=="E"{print $2; exit}')"
fi
if [ -z "${NUGET_FEED:-}" ]; then
  echo "error SETUP002: NUGET_FEED: unset, and 'dotnet nuget list source' shows no enabled source; set NUGET_FEED to a NuGet v3 index URL." >&2
  exit 1
fi
export NUGET_FEED
# Where the Fashion-MNIST IDX files are (the Debian package's folder unless told otherwise).
export WAAL_FASHION_MNIST="${WAAL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
# oneDNN's AVX2/AVX-512 kernels produce NaN losses with two threads on AMD family 26 (Zen 5) virtual machines that
# hide the cache topology (this project's CI machines): limit oneDNN to SSE4.1 there (docs/platform.md).
if [ -z "${ONEDNN_MAX_CPU_ISA:-}${DNNL_MAX_CPU_ISA:-}" ] && grep -q AuthenticAMD /proc/cpuinfo 2>/dev/null \
  && grep -qP '^cpu family\t: 26$' /proc/cpuinfo && [ ! -d /sys/devices/system/cpu/cpu0/cache ]; then
  export ONEDNN_MAX_CPU_ISA=SSE41
fi

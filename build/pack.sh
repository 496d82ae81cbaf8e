#!/usr/bin/env bash
# Writes the NuGet packages (symbols and sources embedded in each assembly) to build/packages/: Waal.Core,
# Waal.Data, Waal.Learning, Waal.Strategies, Waal.Experiments (the F# layers), Waal (the C# facade), Waal.Cpu (Waal
# with libtorch's CPU backend, as dependencies: what a C# program adds), Waal.Cli
# (the `waal` command as a .NET tool, libtorch's CPU backend inside: about 210 MB) and Waal.Experiments.Targets
# (the experiment targets for a PackageReference, with their tasks and the runner without libtorch, which its
# entry point links in from the package cache at the first build: about 85 MB; libtorch is packed once). The version comes from git through
# MinVer (a tag vMAJOR.MINOR.PATCH gives that version; commits after it a preview of the next); a version given
# as the first argument is used instead. WAAL_PACKAGES names another output folder; WAAL_SKIP_SETUP=1 packs what
# is already built (the test command's package tests, after its own set-up).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[ "${WAAL_SKIP_SETUP:-}" = 1 ] || bash build/setup.sh --all
source build/env.sh
version="${1:-$(dotnet minver --tag-prefix v --minimum-major-minor 0.1 --default-pre-release-identifiers preview.0 2>/dev/null)}"
out="${WAAL_PACKAGES:-$root/build/packages}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"  # each project would read a relative path from its own folder
# One MSBuild graph (build/pack.proj) packs them all in parallel from what setup.sh built (NoBuild): 23 s against
# 32 s for one `dotnet pack` each. The package version is the package's alone (the assemblies keep the version in
# build/Common.props), so nothing is compiled again.
dotnet msbuild build/pack.proj -t:Pack -m -nologo -v:quiet -p:PackageVersion="$version" -p:PackageOutputPath="$out/" \
  || { echo "error PACK001: dotnet msbuild build/pack.proj failed (the messages above name the project)" >&2; exit 1; }
echo "packages: $out (version $version)"
ls "$out" | grep -F ".$version." | sed 's/^/  /'

#!/usr/bin/env bash
# Fails when a tracked file names a package registry's host. The hosts are read at run time from this
# machine's NuGet, npm and apt configuration, so the repository never has to name them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hosts=$( { dotnet nuget list source --format short 2>/dev/null | awk '{print $2}'
           npm config get registry 2>/dev/null
           cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -oE 'https?://[^ ]+'
         } | grep -oE '^[a-z]+://[^/:]+' | sed -E 's#^[a-z]+://##' | grep -F . | sort -u )
if [ -z "$hosts" ]; then
  echo "check-hosts: no registry configuration found on this machine; nothing to check against."
  exit 0
fi
args=(); while read -r h; do args+=(-e "$h"); done <<<"$hosts"
found=$(git ls-files -z | xargs -0 grep -IlF "${args[@]}" 2>/dev/null)
if [ -n "$found" ]; then
  echo "error HOSTS001: these tracked files name a package registry host (use %NUGET_FEED%; rewrite paket.lock's remote line):" >&2
  echo "$found" | sed 's/^/  /' >&2
  exit 1
fi
echo "check-hosts: no tracked file names any of the $(echo "$hosts" | wc -l) registry hosts configured here."

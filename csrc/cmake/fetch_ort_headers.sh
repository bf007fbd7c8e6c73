#!/usr/bin/env bash
# Download Debian's libonnxruntime-dev (the onnxruntime C/C++ headers) and unpack it under DEST, without
# root and without touching the system: apt runs with a private sources list, package lists and cache
# inside DEST, against the Debian archive the system already uses, with the system's keyrings (the
# signatures are checked as usual). Prints the include directory on success.
#
#   fetch_ort_headers.sh DEST [SUITE]     SUITE: the Debian release carrying the package (default: trixie)
#
# Environment: CAPSNET_ORT_DEBIAN_MIRROR overrides the archive URI read from the system's apt sources.
set -euo pipefail

dest=${1:?usage: fetch_ort_headers.sh DEST [SUITE]}
suite=${2:-trixie}
package=libonnxruntime-dev

fail() {
  echo "fetch_ort_headers: $*" >&2
  exit 1
}

command -v apt-get >/dev/null || fail "apt-get not found (not a Debian-based system)"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found (not a Debian-based system)"

# The Debian archive of the system: the first URI of a deb source whose suite is a plain release name
# (not -security/-updates, not a third-party 'nodistro' or similar), from one-line and deb822 sources.
find_mirror() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $file ]] || continue
    awk '$1 == "deb" {
           i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
           uri = $i; suite = $(i + 1)
           if (suite ~ /^[a-z]+$/ && suite != "nodistro" && uri ~ /debian\/?$/) { print uri; exit }
         }' "$file"
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f $file ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         {
           uris = ""; suites = ""; types = ""; enabled = "yes"
           for (k = 1; k <= NF; k++) {
             if ($k ~ /^URIs:/) { uris = $k; sub(/^URIs:[ \t]*/, "", uris) }
             if ($k ~ /^Suites:/) { suites = $k; sub(/^Suites:[ \t]*/, "", suites) }
             if ($k ~ /^Types:/) { types = $k }
             if ($k ~ /^Enabled:[ \t]*no/) { enabled = "no" }
           }
           if (enabled == "no" || types !~ /deb( |$)/) next
           split(suites, s, /[ \t]+/); split(uris, u, /[ \t]+/)
           plain = 0; for (k in s) if (s[k] ~ /^[a-z]+$/ && s[k] != "nodistro") plain = 1
           if (plain && u[1] ~ /debian\/?$/) { print u[1]; exit }
         }' "$file"
  done
}

mirror=${CAPSNET_ORT_DEBIAN_MIRROR:-$(find_mirror | head -n 1)}
[[ -n $mirror ]] || fail "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed_by=""
[[ -f $keyring ]] && signed_by="[signed-by=$keyring] "

work="$dest/apt"
rm -rf "$work" "$dest/root"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/preferences.d" "$dest/root"
echo "deb ${signed_by}${mirror} ${suite} main" >"$work/sources.list"

options=(
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/parts"
  -o "Dir::Etc::PreferencesParts=$work/preferences.d"
  -o "Dir::Etc::Preferences=$work/preferences"
  -o "Debug::NoLocking=1"
  -o "Acquire::Check-Valid-Until=false"
  -o "Acquire::Retries=2"
  -o "Acquire::http::Timeout=30"
  -o "Acquire::Languages=none"
  -o "APT::Get::List-Cleanup=false"
)
# As root, apt drops privileges to the _apt user, who cannot write the private directories.
[[ $(id -u) -eq 0 ]] && options+=(-o "APT::Sandbox::User=root")

echo "fetch_ort_headers: $package from $mirror $suite" >&2
apt-get "${options[@]}" -qq update >&2 || fail "apt-get update of $mirror $suite failed"
(cd "$work" && apt-get "${options[@]}" -qq download "$package" >&2) || fail "apt-get download $package failed"
deb=$(ls "$work"/${package}_*.deb 2>/dev/null | head -n 1)
[[ -n $deb ]] || fail "apt-get download left no ${package}_*.deb in $work"
dpkg-deb -x "$deb" "$dest/root"
include="$dest/root/usr/include/onnxruntime"
[[ -f $include/onnxruntime_cxx_api.h ]] || fail "$deb has no usr/include/onnxruntime/onnxruntime_cxx_api.h"
rm -rf "$work"
echo "$include"

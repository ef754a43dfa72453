#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests drive, when missing.
# Used by `make e2e`; .ci/run installs the same list. Needs root (apt-get)
# only when something is missing.
set -euo pipefail

packages=(
  ca-certificates curl
  xrootd-server xrootd-scitokens-plugins xrootd-client xrootd-plugins xrootd-client-http-plugins
  gfal2-plugin-http gfal2-plugin-xrootd gfal2-util-scripts python3-gfal2-util
  davix rclone oidc-agent-cli
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "e2e: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "e2e: missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/bin/sh
# Install Debian's Chromium for the event console's browser tests (Playwright drives it by its
# path, /usr/bin/chromium; Playwright's own browser download is not used). Needs root (or sudo)
# and the Debian archive.
set -eu

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: Chromium is already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
echo "install-chromium: installed chromium $(dpkg-query -W -f '${Version}' chromium)"

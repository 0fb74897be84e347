#!/bin/sh
# Install Redmine 5 with SQLite and the puma server from the Debian packages, for
# `make test-redmine`. No database is created and nothing is started: the tests run their own
# private instance (incman/testing/redmine_server.py). Needs root (or sudo) and the Debian archive.
set -eu

if [ -f /usr/share/redmine/config.ru ] && command -v puma >/dev/null 2>&1 \
  && dpkg-query -W -f '${Status}' redmine-sqlite 2>/dev/null | grep -q 'ok installed'; then
  echo "install-redmine: Redmine is already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

# No database for the package's default instance: dbconfig would create and migrate one.
selections=$(mktemp)
trap 'rm -f "$selections"' EXIT
cat > "$selections" <<'X'
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean false
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
X

$SUDO apt-get update
$SUDO debconf-set-selections "$selections"
# puma is the Rack server (bookworm has no ruby-puma); no recommends: no passenger.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  redmine redmine-sqlite puma
echo "install-redmine: installed redmine $(dpkg-query -W -f '${Version}' redmine)"

#!/bin/sh
# Install Request Tracker 5 with an SQLite database from the Debian packages, for `make test-rt`.
# Nothing is started or configured in /etc beyond what the packages do: the tests run their own
# private instance (incman/testing/rt_server.py). Needs root (or sudo) and the Debian archive.
set -eu

RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
if [ -x "$RT_SERVER" ] && [ -x /usr/sbin/rt-setup-database-5 ]; then
  echo "install-rt: Request Tracker 5 is already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

selections=$(mktemp)
trap 'rm -f "$selections"' EXIT
cat > "$selections" <<'X'
request-tracker5 request-tracker5/rtname string incman-test
request-tracker5 request-tracker5/organization string incman.test
request-tracker5 request-tracker5/correspondaddress string rt@localhost
request-tracker5 request-tracker5/commentaddress string rt-comment@localhost
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1:8080
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
X

$SUDO apt-get update
$SUDO debconf-set-selections "$selections"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  request-tracker5 rt5-db-sqlite
echo "install-rt: installed request-tracker5 $(dpkg-query -W -f '${Version}' request-tracker5)"

#!/usr/bin/env bash
# Installs the Debian packages that tests need (Prometheus and promtool) when
# running as root on Debian. Elsewhere it says what is missing; the tests that
# need it then skip with that reason (and fail under CI=true).
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
  echo "installing Debian package prometheus (for promtool and the scrape tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Debian's package may start a service where systemd runs; the tests start their own.
else
  echo "note: prometheus/promtool not found and not root on Debian;" \
       "install Debian's 'prometheus' package or the Prometheus tests will skip" >&2
fi

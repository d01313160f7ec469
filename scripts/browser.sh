#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download is not
# reachable here): install it when it is missing and this user may install packages.
set -uo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "browser: /usr/bin/chromium is missing; the browser test will skip (install: apt-get install chromium)" >&2
  exit 0
fi
echo "browser: installing Debian's chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null \
  || echo "browser: could not install chromium" >&2

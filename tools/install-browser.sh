#!/usr/bin/env bash
# Installs Debian's headless Chromium for the console's browser tests, and prints its path on
# the last line of stdout. Playwright drives it through `executable_path`: Playwright's own
# browser download is not used, so nothing is fetched from outside Debian's archive.
# A second run installs nothing. JOBQUEUE_CHROMIUM names another binary and skips the install.
# Without root and without chromium it installs nothing and prints an empty last line.
set -euo pipefail

log() { echo "install-browser: $*" >&2; }
die() { echo "install-browser: $*" >&2; exit 1; }

if [ -n "${JOBQUEUE_CHROMIUM:-}" ]; then
  [ -x "$JOBQUEUE_CHROMIUM" ] || die "JOBQUEUE_CHROMIUM=$JOBQUEUE_CHROMIUM is not an executable"
  echo "$JOBQUEUE_CHROMIUM"
  exit 0
fi

browser=/usr/bin/chromium
if [ ! -x "$browser" ]; then
  if [ "$(id -u)" != 0 ]; then
    # not fatal: the browser tests then skip and say so (and fail under JOBQUEUE_REQUIRE_K8S=1)
    log "chromium is missing and this is not root: install it with 'apt-get install chromium'"
    echo ""
    exit 0
  fi
  log "installing chromium with apt"
  # A fresh machine may have no package lists yet; install finds nothing without them.
  # Another install may hold dpkg's lock (CI runs scripts in parallel): wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends chromium fonts-dejavu-core >&2
fi
"$browser" --version >&2
echo "$browser"

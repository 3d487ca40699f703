#!/usr/bin/env bash
# The pieces of a real node that come from Debian, not from Go: runc's build needs (gcc,
# pkg-config, libseccomp-dev), the CNI plugins (bridge, host-local, loopback, portmap from
# containernetworking-plugins), iptables for kube-proxy and the bridge's masquerade, docker.io
# (to build and save the image), debootstrap (its base) and jq (tools/runc-bounded). Then `build-tools.sh --node`, or
# with --kind `build-tools.sh --kind` (what kind's node image also needs).
# Installs with apt only what is missing; needs root for that. Prints the bin dir last.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "setup-node: $*" >&2; }
die() { echo "setup-node: $*" >&2; exit 1; }

packages=(gcc pkg-config libseccomp-dev containernetworking-plugins iptables docker.io debootstrap jq)
need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    # The real-pod tests then skip (and fail under JOBQUEUE_REQUIRE_K8S=1); the rest still runs.
    log "missing ${need[*]} and cannot install them (needs root and apt): building no node"
    exec bash "$here/build-tools.sh"
  fi
  log "installing ${need[*]} with apt"
  # A fresh machine may have no package lists yet; other scripts may hold apt's lock for a while.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "${need[@]}" >&2
fi
exec bash "$here/build-tools.sh" "${1:---node}"

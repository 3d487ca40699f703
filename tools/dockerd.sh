#!/usr/bin/env bash
# dockerd as this project starts it (tools/dockerd-lib.sh, tests/kind), in the foreground:
# - no default bridge and no iptables rules of its own: image builds use --network host, and
#   kind's nodes sit on kind's own network, reached through docker-proxy; nothing is left in
#   the host's iptables for the real-node suite (tests/containers);
# - runc through tools/runc-bounded, which drops capabilities the machine withholds from the
#   config of a --privileged container (kind's nodes).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec dockerd --iptables=false --bridge=none --storage-driver=overlay2 \
  --add-runtime "runc-bounded=$here/runc-bounded" --default-runtime runc-bounded "$@"

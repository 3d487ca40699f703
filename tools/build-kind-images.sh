#!/usr/bin/env bash
# The images the kind suite needs, made on a machine that reaches no container registry:
# - Debian root file systems from debootstrap (docker import), one per package set;
# - kind's node base image (tools/kind/base): systemd, containerd, runc, crictl, CNI plugins;
# - the Kubernetes component images (our binaries on the Debian base), and the ones kind's
#   node-image build pre-loads (etcd, CoreDNS, pause, local-path-provisioner and its helper);
# - the node image: `kind build node-image` from a release-like tarball of our binaries;
# - a PostgreSQL image (tools/kind/postgresql) for the chart's bundled StatefulSet.
# Every binary comes from tools/build-tools.sh --kind (pinned in tools/versions.env). Each image
# is tagged by a hash of its inputs and rebuilt only when that tag is missing; the root file
# systems are also kept as tarballs in ~/.cache/job-queue/images.
# Needs a running Docker engine (tools/dockerd-lib.sh starts one when none answers, and stops
# only that one on exit) and root for apt and debootstrap on a fresh machine.
# Prints KEY=VALUE lines last: KIND, KIND_NODE_IMAGE, POSTGRES_IMAGE.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "build-kind-images: $*" >&2; }
die() { echo "build-kind-images: $*" >&2; exit 1; }
# shellcheck source=versions.env
source "$here/versions.env"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/job-queue/images
suite=bookworm
timings=()
timed() {  # name, then the command
  local name=$1 start=$SECONDS; shift
  "$@"
  timings+=("$name $((SECONDS - start))s")
}

# --- the Go builds (and, as root, the Debian packages they and the images need)
bin=$(bash "$here/setup-node.sh" --kind | tail -1)
for b in kind kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler \
  kube-proxy etcd coredns containerd containerd-shim-runc-v2 ctr runc crictl \
  local-path-provisioner cni/bridge; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing; run tools/build-tools.sh --kind"
done
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (apt-get install debootstrap)"

# shellcheck source=dockerd-lib.sh
source "$here/dockerd-lib.sh"
ensure_dockerd
mkdir -p "$cache"
exec 8>"$cache/.kind-images.lock"
flock 8

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
files_hash() { (cd "$here/kind" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12; }

# --- Debian root file systems: "slim" for the component images, "node" for kind's base image,
# "postgresql" for the database. Kept as tarballs, imported as jobqueue.local/rootfs-NAME:KEY.
rootfs_revision=1  # bump when the way a root file system is made changes
declare -A rootfs_packages=(
  [slim]=ca-certificates,iptables,nftables,conntrack
  [node]=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps
  [postgresql]=postgresql,ca-certificates
)
rootfs_image() { echo "jobqueue.local/rootfs-$1:$(echo "$suite ${rootfs_packages[$1]} $rootfs_revision" | sha256sum | cut -c1-12)"; }
make_rootfs() {  # name: debootstrap into a tarball (cached), then docker import
  local name=$1 image tar root start=$SECONDS
  image=$(rootfs_image "$name")
  have_image "$image" && return 0
  tar="$cache/rootfs-$name-${image##*:}.tar"
  if [ ! -f "$tar" ]; then
    root=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-rootfs.XXXXXX")
    log "debootstrap $suite ($name: ${rootfs_packages[$name]})"
    debootstrap --variant=minbase --include="${rootfs_packages[$name]}" "$suite" "$root" \
      >"$cache/rootfs-$name.log" 2>&1 || { tail -20 "$cache/rootfs-$name.log" >&2; die "debootstrap $name failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
      "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
  fi
  docker import "$tar" "$image" >/dev/null
  log "root file system $name ready in $((SECONDS - start))s"
}
rootfs_start=$SECONDS
pids=()
for name in slim node postgresql; do make_rootfs "$name" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid" || die "a root file system failed (see above)"; done
timings+=("rootfs $((SECONDS - rootfs_start))s")
slim=$(rootfs_image slim)

# --- kind's base image
binaries_key="$CONTAINERD_VERSION $RUNC_VERSION $CRI_TOOLS_VERSION $CNI_PLUGINS_VERSION $TOOLS_BUILD_REVISION"
base_key=$(echo "$(rootfs_image node) $binaries_key $(files_hash base)" | sha256sum | cut -c1-12)
base=jobqueue.local/kind-base:$base_key
build_base() {
  local context
  context=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-kind-base.XXXXXX")
  cp -a "$here/kind/base/." "$context/"
  mkdir -p "$context/bin/cni"
  cp "$bin"/{containerd,containerd-shim-runc-v2,ctr,crictl,runc} "$context/bin/"
  cp "$bin"/cni/* "$context/bin/cni/"
  log "building $base"
  docker build --network host --build-arg ROOTFS_IMAGE="$(rootfs_image node)" -t "$base" \
    "$context" >&2
  rm -rf "$context"
}
if ! have_image "$base"; then timed base build_base; fi

# --- component images: one binary each on the slim base. kubeadm names the control plane's
# images; kind's node-image build also pre-loads its CNI and storage images by the names in
# versions.env (it would pull any it does not find, and there is no registry to pull from).
component() {  # tag, binary, then the entrypoint (JSON array) and optional user
  local tag=$1 binary=$2 entrypoint=$3 user=${4:-0:0} context
  context=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-component.XXXXXX")
  cp "$binary" "$context/"
  {
    echo "FROM $slim"
    echo "COPY $(basename "$binary") /usr/local/bin/"
    echo "USER $user"
    echo "ENTRYPOINT $entrypoint"
  } >"$context/Dockerfile"
  docker build -q -t "$tag" "$context" >/dev/null
  rm -rf "$context"
}
placeholder() {  # tag, what it stands for: an image that says why it is empty and fails
  local tag=$1 what=$2 context
  context=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-placeholder.XXXXXX")
  printf 'FROM %s\nCMD ["sh", "-c", "echo %s >&2; exit 1"]\n' "$slim" "$what" >"$context/Dockerfile"
  docker build -q -t "$tag" "$context" >/dev/null
  rm -rf "$context"
}

images=$("$bin/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION")
image_named() { grep -E "/$1:" <<<"$images" | head -1; }
pause_tag=$(sed -n 's/^ *sandbox_image = "\(.*\)"$/\1/p' "$here/kind/base/etc/containerd/config.toml")
etcd_tag=$(image_named etcd)
coredns_tag=$(image_named coredns)
[ -n "$etcd_tag" ] && [ -n "$coredns_tag" ] && [ -n "$pause_tag" ] || die "kubeadm listed no etcd or CoreDNS image: $images"

node_key=$(echo "$base_key $(rootfs_image slim) $KUBERNETES_VERSION $ETCD_VERSION $COREDNS_VERSION \
  $LOCAL_PATH_PROVISIONER_VERSION $KIND_VERSION $TOOLS_BUILD_REVISION $(sha256sum <"$0")" | sha256sum | cut -c1-12)
node=jobqueue.local/kind-node:$node_key
build_node() {
  local release bindir work
  work=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-kind-release.XXXXXX")
  release="$work/kubernetes"
  bindir="$release/server/bin"
  mkdir -p "$bindir"
  echo "$KUBERNETES_VERSION" >"$release/version"
  cp "$bin"/{kubeadm,kubelet,kubectl} "$bindir/"
  local k8s=registry.k8s.io name
  for name in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    component "$k8s/$name:$KUBERNETES_VERSION" "$bin/$name" "[\"/usr/local/bin/$name\"]"
  done
  # etcd and CoreDNS are our pinned builds under the tags kubeadm asks for.
  component "$etcd_tag" "$bin/etcd" '["/usr/local/bin/etcd"]'
  component "$coredns_tag" "$bin/coredns" '["/usr/local/bin/coredns"]'
  component "$KIND_STORAGE_IMAGE" "$bin/local-path-provisioner" '["/usr/local/bin/local-path-provisioner"]'
  local pause_dir
  pause_dir=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-pause.XXXXXX")
  (cd "$pause_dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' \
    -o pause "$here/pause/main.go") >&2
  component "$pause_tag" "$pause_dir/pause" '["/usr/local/bin/pause"]' 65535:65535
  rm -rf "$pause_dir"
  # the storage helper pod runs sh, mkdir and rm: the slim base has them
  docker tag "$slim" "$KIND_STORAGE_HELPER_IMAGE"
  # kind's default CNI, kindnetd, is not a Go module the proxy serves: the suite creates its
  # clusters with disableDefaultCNI and a bridge network, and this stand-in only fills the name
  placeholder "$KIND_CNI_IMAGE" "kindnetd is not built here: create the cluster with networking.disableDefaultCNI (tests/kind/README.md)"

  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    docker save -o "$bindir/$name.tar" "$k8s/$name:$KUBERNETES_VERSION"
  done
  # kind reads an archive's tags from its "repositories" entry when that comes first, and
  # loads every image in it: the pre-loaded images ride in kube-proxy.tar. Docker writes
  # Docker Hub's names short (kindest/...), kind looks for them in full (docker.io/kindest/...).
  local archive="$work/archive"
  mkdir -p "$archive"
  docker save "$k8s/kube-proxy:$KUBERNETES_VERSION" "$etcd_tag" "$coredns_tag" "$pause_tag" \
    "$KIND_STORAGE_IMAGE" "$KIND_STORAGE_HELPER_IMAGE" "$KIND_CNI_IMAGE" | tar -C "$archive" -xf -
  jq 'with_entries(if (.key | split("/")[0] | test("[.:]")) then . else .key = "docker.io/" + .key end)' \
    "$archive/repositories" >"$archive/repositories.full"
  mv "$archive/repositories.full" "$archive/repositories"
  (cd "$archive" && tar -cf "$bindir/kube-proxy.tar" repositories $(ls | grep -v '^repositories$'))
  rm -rf "$archive"
  local compress=gzip
  command -v pigz >/dev/null 2>&1 && compress=pigz
  tar -C "$work" -cf - kubernetes | $compress -1 >"$work/kubernetes-server-linux-amd64.tar.gz"
  rm -rf "$release"
  log "kind build node-image $node (base $base)"
  "$bin/kind" build node-image --type file --base-image "$base" --image "$node" \
    "$work/kubernetes-server-linux-amd64.tar.gz" >&2 || die "kind build node-image failed (above)"
  rm -rf "$work"
}
if ! have_image "$node"; then timed node build_node; fi

# --- PostgreSQL
postgres_key=$(echo "$(rootfs_image postgresql) $(files_hash postgresql)" | sha256sum | cut -c1-12)
postgres=jobqueue.local/postgresql:$postgres_key
build_postgres() {
  log "building $postgres"
  docker build --build-arg ROOTFS_IMAGE="$(rootfs_image postgresql)" -t "$postgres" \
    "$here/kind/postgresql" >&2
}
if ! have_image "$postgres"; then timed postgresql build_postgres; fi

log "timings: ${timings[*]:-all cached}"
echo "KIND=$bin/kind"
echo "KIND_NODE_IMAGE=$node"
echo "POSTGRES_IMAGE=$postgres"

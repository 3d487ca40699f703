#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl, kwok, helm and kube-score from Go modules
# (--node adds kubelet, kube-proxy, containerd and runc; --kind adds those, kubeadm, kind, crictl,
# the CNI plugins and local-path-provisioner; --keda adds KEDA's operator and adapter)
# into a per-machine cache keyed by tools/versions.env. Idempotent and safe to run concurrently.
# Prints the bin directory on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

die() { echo "build-tools: $*" >&2; exit 1; }
log() { echo "build-tools: $*" >&2; }

command -v go >/dev/null 2>&1 || die "'go' is not on PATH. Install Go 1.24 or newer (https://go.dev/doc/install), then run: tools/build-tools.sh"
command -v flock >/dev/null 2>&1 || die "'flock' is missing; install util-linux."

# Tools stamped by their own version are left out of the key, so adding or bumping one does not
# rebuild Kubernetes on every machine.
stamped='^(KUBE_SCORE|CONTAINERD|RUNC|COREDNS|KEDA|KIND|CRI_TOOLS|CNI_PLUGINS|LOCAL_PATH_PROVISIONER)_VERSION='
key=$(grep -v -E -e '^#' -e "$stamped" -e '^KIND_' "$here/versions.env" | sha256sum | cut -c1-12)
root=${JOBQUEUE_TOOLS_DIR:-"${XDG_CACHE_HOME:-$HOME/.cache}/job-queue/tools/$key"}
bin="$root/bin"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm kube-score)
k8s_commands=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
stamps=("kube-score-$KUBE_SCORE_VERSION")

all_built() {
  [ -f "$root/.complete" ] || return 1
  for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done
  for s in "${stamps[@]}"; do [ -f "$root/.$s" ] || return 1; done
}

# --kind builds what kind's node image holds (tools/build-kind-images.sh): the real node's
# pieces, and kubeadm, kind, crictl, the CNI plugins (in bin/cni) and local-path-provisioner.
kind_build=""
if [ "${1:-}" = "--kind" ]; then
  kind_build=1
  set -- --node "${@:2}"
  tools+=(kubeadm kind crictl local-path-provisioner cni/bridge cni/host-local cni/loopback cni/portmap)
  k8s_commands+=(kubeadm)
  stamps+=("kind-$KIND_VERSION" "crictl-$CRI_TOOLS_VERSION" "cni-$CNI_PLUGINS_VERSION"
    "local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION")
fi

# --node also builds what a real node needs (kubelet, kube-proxy), for the container tests.
if [ "${1:-}" = "--node" ]; then
  shift
  tools+=(kubelet kube-proxy containerd containerd-shim-runc-v2 ctr runc coredns)
  k8s_commands+=(kubelet kube-proxy)
  stamps+=("containerd-$CONTAINERD_VERSION" "runc-$RUNC_VERSION" "coredns-$COREDNS_VERSION")
  if [ ! -f "$root/.runc-$RUNC_VERSION" ] && ! pkg-config --exists libseccomp 2>/dev/null; then
    die "--node builds runc with seccomp, which needs gcc, pkg-config and libseccomp-dev (apt-get install gcc pkg-config libseccomp-dev)"
  fi
fi

# --keda also builds KEDA's operator and metrics adapter, for bench/bench_vs_keda.py only.
if [ "${1:-}" = "--keda" ]; then
  shift
  tools+=(keda-operator keda-adapter)
  stamps+=("keda-$KEDA_VERSION")
fi

if [ "${1:-}" = "--print-bin" ]; then
  echo "$bin"; exit 0
fi

if all_built; then
  log "tools are up to date in $bin"
  echo "$bin"; exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
log "waiting for the build lock on $root/.lock"
flock 9
if all_built; then  # another run built them while we waited
  echo "$bin"; exit 0
fi

mkdir -p "$bin"
work=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=${GOTOOLCHAIN:-auto} CGO_ENABLED=0

build_step() {  # name, then the command; go's own error stops the script
  local name=$1; shift
  local start=$SECONDS
  log "building $name ..."
  if ! "$@" >&2; then
    die "building $name failed (see go's error above). Check network access to the Go module proxy and free disk, then re-run tools/build-tools.sh"
  fi
  log "built $name in $((SECONDS - start))s"
}

# --- Kubernetes: a wrapper module with a replace line per staging module, from the tag's go.mod.
missing_k8s=()
for cmd in "${k8s_commands[@]}"; do [ -x "$bin/$cmd" ] || missing_k8s+=("$cmd"); done
if [ "${#missing_k8s[@]}" -gt 0 ]; then
  k8s="$work/kubernetes"; mkdir -p "$k8s"
  minor_version=${KUBERNETES_VERSION#v1.}; minor=${minor_version%%.*}
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  gomod=$(cd "$k8s" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$KUBERNETES_VERSION"
  go_directive=$(sed -n 's/^go \(.*\)$/\1/p' "$gomod" | head -1)
  {
    echo "module jobqueue.local/kubernetes-tools"
    echo
    echo "go $go_directive"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # staging modules: "k8s.io/api => ./staging/src/k8s.io/api" becomes "k8s.io/api => k8s.io/api v0.x.y"
    sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*$#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } > "$k8s/go.mod"
  for cmd in "${missing_k8s[@]}"; do
    mkdir -p "$k8s/cmd/$cmd"
    cp "$here/wrapper/$cmd.go.tmpl" "$k8s/cmd/$cmd/main.go"
  done
  build_step "go mod tidy (kubernetes $KUBERNETES_VERSION)" bash -c "cd '$k8s' && go mod tidy"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in "${missing_k8s[@]}"; do
    build_step "$cmd $KUBERNETES_VERSION" bash -c "cd '$k8s' && go build -trimpath -ldflags '$ldflags' -o '$bin/$cmd.tmp' ./cmd/$cmd && mv '$bin/$cmd.tmp' '$bin/$cmd'"
  done
fi

# --- etcd: its modules use local replaces, so it needs a wrapper module too.
if [ ! -x "$bin/etcd" ]; then
  e="$work/etcd"; mkdir -p "$e/cmd/etcd"
  cp "$here/wrapper/etcd.go.tmpl" "$e/cmd/etcd/main.go"
  printf 'module jobqueue.local/etcd-tools\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$e/go.mod"
  build_step "go mod tidy (etcd $ETCD_VERSION)" bash -c "cd '$e' && go mod tidy"
  build_step "etcd $ETCD_VERSION" bash -c "cd '$e' && go build -trimpath -ldflags '-s -w' -o '$bin/etcd.tmp' ./cmd/etcd && mv '$bin/etcd.tmp' '$bin/etcd'"
fi

# --- kwok and helm install directly.
if [ ! -x "$bin/kwok" ]; then
  build_step "kwok $KWOK_VERSION" env GOBIN="$bin" go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
if [ ! -x "$bin/helm" ]; then
  hv="helm.sh/helm/v3/internal/version"
  cu="helm.sh/helm/v3/pkg/chartutil"
  kube_minor=${KUBERNETES_VERSION#v1.}; kube_minor=${kube_minor%%.*}
  # helm's offline default Kubernetes version (for `helm template`) follows the pinned one
  build_step "helm $HELM_VERSION" env GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X $hv.version=$HELM_VERSION -X $cu.k8sVersionMajor=1 -X $cu.k8sVersionMinor=$kube_minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

# stamped_install STAMP BINARIES -- go install args: (re)installs when the stamp is missing.
stamped_install() {
  local stamp=$1 binaries=$2; shift 2; shift  # the "--"
  [ -f "$root/.$stamp" ] && return 0
  for b in $binaries; do rm -f "$bin/$b"; done
  build_step "$stamp" env GOBIN="${STAMPED_GOBIN:-$bin}" go install -trimpath "$@"
  touch "$root/.$stamp"
}
stamped_install "kube-score-$KUBE_SCORE_VERSION" kube-score -- -ldflags '-s -w' \
  "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
if [[ " ${stamps[*]} " == *" runc-$RUNC_VERSION "* ]]; then
  c=github.com/containerd/containerd/v2/cmd
  stamped_install "containerd-$CONTAINERD_VERSION" "containerd containerd-shim-runc-v2 ctr" -- \
    -ldflags '-s -w' "$c/containerd@$CONTAINERD_VERSION" \
    "$c/containerd-shim-runc-v2@$CONTAINERD_VERSION" "$c/ctr@$CONTAINERD_VERSION"
  # runc needs CGO and libseccomp (Debian's libseccomp-dev) for its seccomp filters. Debian's own
  # runc 1.1 and crun 1.8 fail under containerd 2.4, so it is built here.
  CGO_ENABLED=1 stamped_install "runc-$RUNC_VERSION" runc -- -tags seccomp \
    "github.com/opencontainers/runc@$RUNC_VERSION"
  stamped_install "coredns-$COREDNS_VERSION" coredns -- -ldflags '-s -w' \
    "github.com/coredns/coredns@$COREDNS_VERSION"
fi

if [ -n "$kind_build" ]; then
  stamped_install "kind-$KIND_VERSION" kind -- -ldflags '-s -w' "sigs.k8s.io/kind@$KIND_VERSION"
  stamped_install "crictl-$CRI_TOOLS_VERSION" crictl -- \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
  # The plugins a single-node kind cluster's bridge network uses, in bin/cni (their names are
  # generic: bridge, loopback, ...).
  mkdir -p "$bin/cni"
  p=github.com/containernetworking/plugins/plugins
  STAMPED_GOBIN="$bin/cni" stamped_install "cni-$CNI_PLUGINS_VERSION" \
    "cni/bridge cni/host-local cni/loopback cni/portmap" -- -ldflags '-s -w' \
    "$p/main/bridge@$CNI_PLUGINS_VERSION" "$p/ipam/host-local@$CNI_PLUGINS_VERSION" \
    "$p/main/loopback@$CNI_PLUGINS_VERSION" "$p/meta/portmap@$CNI_PLUGINS_VERSION"
  stamped_install "local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION" \
    local-path-provisioner -- -ldflags '-s -w' \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
fi

# --- KEDA: a wrapper module that requires KEDA and repeats its go.mod's one replace line (it
# names a module version, not a local path), so KEDA's own main packages build directly.
if [[ " ${stamps[*]} " == *" keda-$KEDA_VERSION "* ]] && [ ! -f "$root/.keda-$KEDA_VERSION" ]; then
  kd="$work/keda"; mkdir -p "$kd"
  keda=github.com/kedacore/keda/v2
  gomod=$(cd "$kd" && go mod download -json "$keda@$KEDA_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || die "could not download $keda@$KEDA_VERSION"
  {
    echo "module jobqueue.local/keda-tools"
    echo
    echo "go $(sed -n 's/^go \(.*\)$/\1/p' "$gomod" | head -1)"
    echo
    echo "require $keda $KEDA_VERSION"
    echo
    sed -n 's#^replace \([^ ]* [^ ]* => [^ ]* v[^ ]*\)$#replace \1#p' "$gomod"
  } > "$kd/go.mod"
  build_step "go get (keda $KEDA_VERSION)" bash -c "cd '$kd' && go get $keda/cmd/operator@$KEDA_VERSION $keda/cmd/adapter@$KEDA_VERSION"
  keda_ldflags="-s -w -X $keda/version.Version=$KEDA_VERSION"
  for pair in operator:keda-operator adapter:keda-adapter; do
    rm -f "$bin/${pair#*:}"
    build_step "${pair#*:} $KEDA_VERSION" bash -c "cd '$kd' && nice -n 10 go build -trimpath -ldflags '$keda_ldflags' -o '$bin/${pair#*:}.tmp' $keda/cmd/${pair%%:*} && mv '$bin/${pair#*:}.tmp' '$bin/${pair#*:}'"
  done
  touch "$root/.keda-$KEDA_VERSION"
fi

all_built_now=1
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || all_built_now=0; done
[ "$all_built_now" = 1 ] || die "some tools are still missing in $bin"
touch "$root/.complete"
log "all tools built in $bin"
echo "$bin"

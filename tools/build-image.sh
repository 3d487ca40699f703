#!/usr/bin/env bash
# `make image`: builds the job-queue image on a machine where no container registry is reachable.
# - installs docker.io and debootstrap with apt when they are missing (needs root);
# - starts dockerd when none runs, and stops only the one it started;
# - makes a Debian bookworm base with python3 (debootstrap), trusting the host's CA bundle, cached
#   per machine and keyed by its inputs; then builds the Dockerfile on it.
# With a registry, `docker build .` uses the real python:3.11-slim-bookworm and nothing changes.
# Prints the image reference on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
log() { echo "build-image: $*" >&2; }
die() { echo "build-image: $*" >&2; exit 1; }

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/charts/job-queue/Chart.yaml")
image=${JOBQUEUE_IMAGE:-job-queue:$version}
ca_bundle=${JOBQUEUE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
base_packages=python3,python3-venv,ca-certificates
base_revision=2  # bump when the way the base is made changes

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
  log "installing ${need[*]} with apt"
  # A fresh machine may have no package lists yet; install finds nothing without them.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}" >&2
fi

# shellcheck source=dockerd-lib.sh
source "$here/dockerd-lib.sh"
ensure_dockerd

key=$( { echo "bookworm $base_packages $base_revision"; sha256sum <"$ca_bundle"; } | sha256sum | cut -c1-12)
base=jobqueue-base:$key
cache=${XDG_CACHE_HOME:-$HOME/.cache}/job-queue/images
if ! docker image inspect "$base" >/dev/null 2>&1; then
  mkdir -p "$cache"
  if [ ! -f "$cache/base-$key.tar" ]; then
    root=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-base.XXXXXX")
    log "debootstrap bookworm ($base_packages) into $root"
    debootstrap --variant=minbase --include="$base_packages" bookworm "$root" >&2
    # The host's CA bundle, the one its package clients trust, so pip inside the build works.
    cp "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
    # Package caches, manuals and translations: nothing in a container reads them.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
      "$root"/usr/share/locale/*
    tar -C "$root" -cf "$cache/base-$key.tar.tmp" . && mv "$cache/base-$key.tar.tmp" "$cache/base-$key.tar"
    rm -rf "$root"
  fi
  docker import "$cache/base-$key.tar" "$base" >&2
fi

log "building $image on $base"
docker build --network host --build-arg PYTHON_IMAGE="$base" \
  --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
  --build-arg VERSION="$version" -t "$image" "$repo" >&2
log "image size: $(docker image inspect --format '{{.Size}}' "$image") bytes"
# The chart's rules: read-only root, uid 10001, no capabilities, no network.
log "checking that $image runs under the chart's rules"
docker run --rm --read-only --user 10001:10001 --cap-drop ALL --network none \
  --security-opt no-new-privileges "$image" --help >/dev/null
# docs/handlers.md's recipe: an image FROM this one installs a package of handlers with pip. The
# package is a wheel made here (no index, no network) that declares one plain `def` task.
log "checking that $image can be extended: FROM $image, pip install a handlers package"
ext=$(mktemp -d)
"${PYTHON:-python3}" - "$ext" <<'PY'
import base64, hashlib, sys, zipfile
files = {
    "myjobs.py": 'import jobqueue\n\n\n'
                 '@jobqueue.task(name="extension_check")\n'
                 'def check() -> dict:\n    return {"ok": True}\n',
    "myjobs-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: myjobs\nVersion: 0.1\n",
    "myjobs-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: build-image.sh\n"
                                  "Root-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(text):
    raw = hashlib.sha256(text.encode()).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
record = "".join(f"{n},{digest(t)},{len(t.encode())}\n" for n, t in files.items())
files["myjobs-0.1.dist-info/RECORD"] = record + "myjobs-0.1.dist-info/RECORD,,\n"
with zipfile.ZipFile(f"{sys.argv[1]}/myjobs-0.1-py3-none-any.whl", "w") as wheel:
    for name, text in files.items():
        wheel.writestr(name, text)
PY
cat >"$ext/Dockerfile" <<DOCKERFILE
FROM $image
USER root
COPY myjobs-0.1-py3-none-any.whl /tmp/
RUN pip install --no-index /tmp/myjobs-0.1-py3-none-any.whl && rm /tmp/myjobs-0.1-py3-none-any.whl
USER 10001:10001
ENV JOBQUEUE_HANDLER_MODULES=myjobs
DOCKERFILE
docker build --network none -t "$image-extended" "$ext" >&2
docker run --rm --read-only --user 10001:10001 --cap-drop ALL --network none \
  --entrypoint /opt/jobqueue/bin/python "$image-extended" -c \
  "from worker.handlers import known_job_types as k; assert 'extension_check' in k(['myjobs'])"
docker image rm "$image-extended" >/dev/null
rm -rf "$ext"
echo "$image"

#!/usr/bin/env bash
# The images a real node runs, saved as one `docker save` archive for `ctr images import`:
# - the job-queue image (tools/build-image.sh) with the end-to-end test handler on top
#   (tests/kind/Dockerfile.e2e), tagged $E2E_IMAGE;
# - the pod sandbox ("pause") image, from tools/pause/main.go, tagged $PAUSE_IMAGE: no registry
#   is reachable here, so containerd's config pins this local one.
# Usage: build-node-images.sh OUT_DIR. Prints the archive's path on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
log() { echo "build-node-images: $*" >&2; }
die() { echo "build-node-images: $*" >&2; exit 1; }
out=${1:?usage: build-node-images.sh OUT_DIR}
e2e_image=${E2E_IMAGE:-job-queue-e2e:containers}
pause_image=${PAUSE_IMAGE:-jobqueue.local/pause:1}
mkdir -p "$out"

# The dockerd started here (if none answers) serves build-image.sh too, which then starts none.
# shellcheck source=dockerd-lib.sh
source "$here/dockerd-lib.sh"
command -v dockerd >/dev/null 2>&1 || die "dockerd is missing; run tools/setup-node.sh (installs docker.io)"
ensure_dockerd

base=$(bash "$here/build-image.sh" | tail -1)
log "adding the e2e handler on top of $base as $e2e_image"
docker build --network host --build-arg BASE_IMAGE="$base" -t "$e2e_image" \
  -f "$repo/tests/kind/Dockerfile.e2e" "$repo/tests/e2e" >&2

pause_dir=$(mktemp -d "${TMPDIR:-/tmp}/jobqueue-pause.XXXXXX")
trap 'rm -rf "$pause_dir"; stop_dockerd' EXIT
(cd "$pause_dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' \
  -o pause "$here/pause/main.go") >&2
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$pause_dir/Dockerfile"
docker build -t "$pause_image" "$pause_dir" >&2

# Saving 450 MB takes a while: keep the archive while both image ids are unchanged.
ids=$(docker image inspect --format '{{.Id}}' "$e2e_image" "$pause_image" | tr '\n' ' ')
archive="$out/node-images.tar"
if [ ! -f "$archive" ] || [ "$(cat "$out/node-images.ids" 2>/dev/null)" != "$ids" ]; then
  log "saving $e2e_image and $pause_image to $archive"
  docker save -o "$archive.tmp" "$e2e_image" "$pause_image"
  mv "$archive.tmp" "$archive"
  echo "$ids" > "$out/node-images.ids"
fi
echo "$archive"

# Sourced by tools/build-image.sh and tools/build-node-images.sh: start dockerd when none answers,
# and stop, on exit, only the one started here. Needs log() and die().
# Its flags are tools/dockerd.sh's: builds use --network host.
started_dockerd=""
stop_dockerd() {
  if [ -n "$started_dockerd" ]; then
    log "stopping the dockerd this script started (pid $started_dockerd)"
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 1; done
  fi
}
ensure_dockerd() {
  trap stop_dockerd EXIT
  docker info >/dev/null 2>&1 && return 0
  log "no dockerd answers; starting one"
  bash "$(dirname "${BASH_SOURCE[0]}")/dockerd.sh" >/tmp/jobqueue-dockerd.log 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not start; see /tmp/jobqueue-dockerd.log"
}

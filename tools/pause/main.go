// pause holds a pod's namespaces open for its containers: containerd's sandbox image runs it.
// No registry is reachable from the test machine, so the node's sandbox image is made locally
// from this program (tools/build-node-images.sh) and pinned in containerd's config.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// As PID 1 of a shared PID namespace it inherits orphans: reap them.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

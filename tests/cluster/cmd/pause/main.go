// Command pause is the pod sandbox's process: it holds the pod's namespaces,
// reaps what is re-parented to it, and exits on SIGINT or SIGTERM. Upstream's
// is a C file (build/pause/linux/pause.c); this one builds with the rest of the
// module, static, for a FROM scratch image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

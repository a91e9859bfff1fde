// Command chorus-etcd runs a single-member etcd (the server embedded as a library,
// the release tests/kube embeds in its apiserver) on a loopback port, until
// SIGTERM or SIGINT. It is the cluster's store: a test store, without fsync.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
)

func main() {
	dataDir := flag.String("data-dir", "", "etcd data directory (required)")
	port := flag.Int("port", 0, "client port on 127.0.0.1 (required)")
	flag.Parse()
	if *dataDir == "" || *port == 0 {
		fmt.Fprintln(os.Stderr, "chorus-etcd: --data-dir and --port are required")
		os.Exit(2)
	}
	if err := run(*dataDir, *port); err != nil {
		fmt.Fprintf(os.Stderr, "chorus-etcd: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, port int) error {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "chorus-cluster"
	cfg.LogLevel = "error"
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	peerListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	peer, _ := url.Parse("http://" + peerListener.Addr().String())
	peerListener.Close()
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A throwaway store: every run has its own data dir (WAL segments are
	// preallocated, 64 MB each by default).
	cfg.UnsafeNoFsync = true
	wal.SegmentSizeBytes = 8 << 20
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return fmt.Errorf("not ready after 60s")
	}
	fmt.Printf("chorus-etcd: ready on %s\n", client)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
		return nil
	case err := <-e.Err():
		return err
	}
}

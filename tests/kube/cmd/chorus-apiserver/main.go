// Command chorus-apiserver runs a real kube-apiserver for Chorus' tests: etcd is
// embedded in the same process, certificates are generated on first start, and
// two kubeconfigs are written (an admin one and a restricted one for RBAC tests).
//
// It is not a cluster: there is no scheduler, no controller manager and no
// kubelet. Tests play the part of the controllers by patching status.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"

	_ "k8s.io/component-base/logs/json/register"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for etcd data, certificates and kubeconfigs (required)")
	port := flag.Int("port", 0, "secure port of the apiserver on 127.0.0.1 (required)")
	etcdPort := flag.Int("etcd-port", 0, "client port of the embedded etcd on 127.0.0.1 (required)")
	verbosity := flag.Int("v", 0, "apiserver log verbosity")
	flag.Parse()
	if *dataDir == "" || *port == 0 || *etcdPort == 0 {
		fmt.Fprintln(os.Stderr, "chorus-apiserver: --data-dir, --port and --etcd-port are required")
		os.Exit(2)
	}
	if err := run(*dataDir, *port, *etcdPort, *verbosity); err != nil {
		fmt.Fprintf(os.Stderr, "chorus-apiserver: %v\n", err)
		os.Exit(1)
	}
}

func run(dataDir string, port, etcdPort, verbosity int) error {
	pki := filepath.Join(dataDir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	ca, err := ensurePKI(pki)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	for _, kc := range []struct{ file, user string }{
		{"admin.kubeconfig", "admin"},
		{"restricted.kubeconfig", "restricted"},
	} {
		if err := writeKubeconfig(filepath.Join(dataDir, kc.file), server, pki, kc.user, ca); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", kc.file, err)
		}
	}

	etcd, err := startEtcd(filepath.Join(dataDir, "etcd"), etcdPort)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs([]string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + filepath.Join(pki, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "serving.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// The kubernetes Service cannot have a loopback endpoint (the reconciler would
		// log an error every 10s), and nothing here would use one.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		// Nothing runs pods here: skip the admission that waits for service-account tokens.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		fmt.Sprintf("--v=%d", verbosity),
	})
	code := cli.Run(cmd)
	etcd.Close()
	os.Exit(code)
	return nil
}

func startEtcd(dir string, port int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "chorus-test"
	cfg.LogLevel = "error"
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	peerListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	peer, _ := url.Parse("http://" + peerListener.Addr().String())
	peerListener.Close()
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A test store: trade durability for speed and disk (WAL segments are
	// preallocated, 64 MB each by default; every test run has its own data dir).
	cfg.UnsafeNoFsync = true
	wal.SegmentSizeBytes = 8 << 20
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("not ready after 60s")
	}
}

// ensurePKI creates, once, a CA, the serving certificate for 127.0.0.1 and
// localhost, client certificates for the admin (system:masters) and restricted
// users, and the service-account signing key.
func ensurePKI(dir string) (*x509.Certificate, error) {
	caCertPath := filepath.Join(dir, "ca.crt")
	if _, err := os.Stat(caCertPath); err == nil {
		raw, err := os.ReadFile(caCertPath)
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(raw)
		return x509.ParseCertificate(block.Bytes)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chorus-test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)

	issue := func(name string, tmpl *x509.Certificate) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		return writeKeyPair(dir, name, der, key)
	}
	serial := int64(2)
	next := func() *big.Int { serial++; return big.NewInt(serial) }
	if err := issue("serving", &x509.Certificate{
		SerialNumber: next(), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}); err != nil {
		return nil, err
	}
	for _, u := range []struct {
		file, cn string
		orgs     []string
	}{
		{"admin", "chorus-admin", []string{"system:masters"}},
		// Holds no group with rights: tests bind it to the role they check.
		{"restricted", "chorus-restricted", nil},
	} {
		if err := issue(u.file, &x509.Certificate{
			SerialNumber: next(), Subject: pkix.Name{CommonName: u.cn, Organization: u.orgs},
			NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}); err != nil {
			return nil, err
		}
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{
		Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}), 0o600); err != nil {
		return nil, err
	}
	// The CA certificate is written last: its presence means the PKI is complete.
	if err := os.WriteFile(caCertPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

func writeKeyPair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func writeKubeconfig(path, server, pki, user string, ca *x509.Certificate) error {
	b64 := func(file string) (string, error) {
		raw, err := os.ReadFile(filepath.Join(pki, file))
		return base64.StdEncoding.EncodeToString(raw), err
	}
	caData := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
	cert, err := b64(user + ".crt")
	if err != nil {
		return err
	}
	key, err := b64(user + ".key")
	if err != nil {
		return err
	}
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: chorus-test
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: %s
  user: {client-certificate-data: %s, client-key-data: %s}
contexts:
- name: %s
  context: {cluster: chorus-test, user: %s, namespace: default}
current-context: %s
`, server, caData, user, cert, key, user, user, user)
	return os.WriteFile(path, []byte(content), 0o600)
}

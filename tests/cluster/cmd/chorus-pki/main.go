// Command chorus-pki writes what a one-node cluster authenticates with into a
// fresh directory: a CA, the apiserver's serving certificate (for every address
// a client may use, the kubernetes Service's cluster IP included), a client
// certificate and kubeconfig per component (each the user the default RBAC
// bindings expect), the kubelet's serving certificate, and the service-account
// signing key.
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
	"os"
	"path/filepath"
	"strings"
	"time"
)

type identity struct {
	file, cn string
	orgs     []string
}

func main() {
	dir := flag.String("dir", "", "directory to write into (required)")
	server := flag.String("server", "", "apiserver URL the kubeconfigs point at (required)")
	ips := flag.String("apiserver-ips", "127.0.0.1", "comma-separated IPs in the apiserver's serving certificate")
	node := flag.String("node", "", "node name: the kubelet's user is system:node:<node> (required)")
	nodeIP := flag.String("node-ip", "127.0.0.1", "the node's IP, in the kubelet's serving certificate")
	flag.Parse()
	if *dir == "" || *server == "" || *node == "" {
		fmt.Fprintln(os.Stderr, "chorus-pki: --dir, --server and --node are required")
		os.Exit(2)
	}
	if err := run(*dir, *server, strings.Split(*ips, ","), *node, *nodeIP); err != nil {
		fmt.Fprintf(os.Stderr, "chorus-pki: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, server string, ips []string, node, nodeIP string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, caKey, err := newCA(dir)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	serial := int64(1)
	issue := func(name string, tmpl *x509.Certificate) error {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = ca.NotBefore, ca.NotAfter
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
	var apiserverIPs []net.IP
	for _, ip := range ips {
		parsed := net.ParseIP(strings.TrimSpace(ip))
		if parsed == nil {
			return fmt.Errorf("--apiserver-ips: %q is not an IP", ip)
		}
		apiserverIPs = append(apiserverIPs, parsed)
	}
	serving := x509.ExtKeyUsageServerAuth
	if err := issue("apiserver", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{serving},
		IPAddresses: apiserverIPs,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}); err != nil {
		return err
	}
	if err := issue("kubelet-serving", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{serving},
		IPAddresses: []net.IP{net.ParseIP(nodeIP), net.ParseIP("127.0.0.1")},
		DNSNames:    []string{node, "localhost"},
	}); err != nil {
		return err
	}
	clients := []identity{
		{"admin", "chorus-admin", []string{"system:masters"}},
		// Holds no group with rights, as tests/kube's: tests bind it to what they check.
		{"restricted", "chorus-restricted", nil},
		{"controller-manager", "system:kube-controller-manager", nil},
		{"scheduler", "system:kube-scheduler", nil},
		{"kube-proxy", "system:kube-proxy", nil},
		{"kubelet", "system:node:" + node, []string{"system:nodes"}},
		// How the apiserver calls the kubelet (logs, exec): the kubelet asks the
		// apiserver whether this user may, and system:masters may.
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}},
	}
	for _, c := range clients {
		if err := issue(c.file, &x509.Certificate{
			Subject:     pkix.Name{CommonName: c.cn, Organization: c.orgs},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}); err != nil {
			return err
		}
		if c.file == "apiserver-kubelet-client" {
			continue
		}
		if err := writeKubeconfig(dir, c.file, server, ca); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", c.file, err)
		}
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{
		Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}), 0o600)
}

func newCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chorus-cluster-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKeyPair(dir, "ca", der, key); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

func writeKeyPair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), cert, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func writeKubeconfig(dir, user, server string, ca *x509.Certificate) error {
	b64 := func(file string) (string, error) {
		raw, err := os.ReadFile(filepath.Join(dir, file))
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
- name: chorus-cluster
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: %s
  user: {client-certificate-data: %s, client-key-data: %s}
contexts:
- name: %s
  context: {cluster: chorus-cluster, user: %s, namespace: default}
current-context: %s
`, server, caData, user, cert, key, user, user, user)
	return os.WriteFile(filepath.Join(dir, user+".kubeconfig"), []byte(content), 0o600)
}

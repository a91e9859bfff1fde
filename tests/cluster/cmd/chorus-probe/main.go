// Command chorus-probe runs in a pod and checks what every Chorus workload on
// the cluster relies on, printing one line per check and a JSON summary:
//
//   - dns: a Service name resolves through cluster DNS (the pod's resolv.conf);
//   - api: https://kubernetes.default.svc answers with the pod's ServiceAccount
//     token, verified against the mounted CA, and says who the token is;
//   - kafka: the broker behind a Service answers ApiVersions, its metadata
//     advertises an address the pod can reach, and that address answers too.
//
// Each check retries for --retry-for, since a pod may start before kube-proxy
// has written a new Service's rules. The exit code is 0 when every check passed.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"

type result struct {
	Check    string  `json:"check"`
	OK       bool    `json:"ok"`
	Detail   string  `json:"detail"`
	Seconds  float64 `json:"seconds"`
	Attempts int     `json:"attempts"`
}

func main() {
	dnsName := flag.String("dns", "kubernetes.default.svc", "a Service name to resolve")
	apiURL := flag.String("api", "https://kubernetes.default.svc", "the apiserver, as pods reach it")
	kafka := flag.String("kafka", "", "the broker's bootstrap address host:port (required)")
	retryFor := flag.Duration("retry-for", 30*time.Second, "how long each check retries")
	flag.Parse()
	if *kafka == "" {
		fmt.Fprintln(os.Stderr, "chorus-probe: --kafka is required")
		os.Exit(2)
	}
	checks := []struct {
		name string
		run  func() (string, error)
	}{
		{"dns", func() (string, error) { return checkDNS(*dnsName) }},
		{"api", func() (string, error) { return checkAPI(*apiURL) }},
		{"kafka", func() (string, error) { return checkKafka(*kafka) }},
	}
	var results []result
	allOK := true
	for _, c := range checks {
		r := retry(c.name, *retryFor, c.run)
		status := "PASS"
		if !r.OK {
			status, allOK = "FAIL", false
		}
		fmt.Printf("CHECK %s %s (%d attempt(s), %.1fs): %s\n", r.Check, status, r.Attempts, r.Seconds, r.Detail)
		results = append(results, r)
	}
	summary, _ := json.Marshal(results)
	fmt.Printf("RESULTS %s\n", summary)
	if !allOK {
		os.Exit(1)
	}
}

func retry(name string, budget time.Duration, run func() (string, error)) result {
	start := time.Now()
	attempts := 0
	for {
		attempts++
		detail, err := run()
		elapsed := time.Since(start).Seconds()
		if err == nil {
			return result{name, true, detail, elapsed, attempts}
		}
		if time.Since(start) > budget {
			return result{name, false, err.Error(), elapsed, attempts}
		}
		fmt.Printf("RETRY %s (attempt %d): %v\n", name, attempts, err)
		time.Sleep(time.Second)
	}
}

func checkDNS(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s -> %v (nameservers %v)", name, addrs, nameservers()), nil
}

func nameservers() []string {
	conf, _ := os.ReadFile("/etc/resolv.conf")
	var found []string
	for _, line := range strings.Split(string(conf), "\n") {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "nameserver" {
			found = append(found, fields[1])
		}
	}
	return found
}

func checkAPI(base string) (string, error) {
	token, err := os.ReadFile(serviceAccount + "/token")
	if err != nil {
		return "", err
	}
	caPEM, err := os.ReadFile(serviceAccount + "/ca.crt")
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return "", errors.New("ca.crt holds no certificate")
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	call := func(method, path string, body []byte) ([]byte, error) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(out))
		}
		return out, nil
	}
	raw, err := call("GET", "/api", nil)
	if err != nil {
		return "", err
	}
	var versions struct {
		Versions []string `json:"versions"`
	}
	if err := json.Unmarshal(raw, &versions); err != nil {
		return "", fmt.Errorf("GET /api: %w", err)
	}
	// Who the apiserver takes the token for: the pod's ServiceAccount.
	raw, err = call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		[]byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`))
	if err != nil {
		return "", err
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &review); err != nil {
		return "", fmt.Errorf("SelfSubjectReview: %w", err)
	}
	return fmt.Sprintf("GET %s/api: versions %v; token is %s", base, versions.Versions,
		review.Status.UserInfo.Username), nil
}

// checkKafka speaks the Kafka protocol by hand (no client library in the image):
// ApiVersions v0 and Metadata v1 on the bootstrap address, then ApiVersions on
// the broker address the metadata advertises.
func checkKafka(bootstrap string) (string, error) {
	apis, err := apiVersions(bootstrap)
	if err != nil {
		return "", fmt.Errorf("bootstrap %s: %w", bootstrap, err)
	}
	brokers, err := metadata(bootstrap)
	if err != nil {
		return "", fmt.Errorf("bootstrap %s: metadata: %w", bootstrap, err)
	}
	if len(brokers) == 0 {
		return "", fmt.Errorf("bootstrap %s: metadata lists no broker", bootstrap)
	}
	for _, advertised := range brokers {
		if _, err := apiVersions(advertised); err != nil {
			return "", fmt.Errorf("advertised broker %s: %w", advertised, err)
		}
	}
	return fmt.Sprintf("bootstrap %s: ApiVersions lists %d APIs; metadata advertises %v, which answers",
		bootstrap, apis, brokers), nil
}

func roundTrip(addr string, apiKey, version int16, body []byte) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	const correlation = 7
	clientID := "chorus-probe"
	var req bytes.Buffer
	_ = binary.Write(&req, binary.BigEndian, apiKey)
	_ = binary.Write(&req, binary.BigEndian, version)
	_ = binary.Write(&req, binary.BigEndian, int32(correlation))
	_ = binary.Write(&req, binary.BigEndian, int16(len(clientID)))
	req.WriteString(clientID)
	req.Write(body)
	frame := make([]byte, 4, 4+req.Len())
	binary.BigEndian.PutUint32(frame, uint32(req.Len()))
	if _, err := conn.Write(append(frame, req.Bytes()...)); err != nil {
		return nil, err
	}
	var size int32
	if err := binary.Read(conn, binary.BigEndian, &size); err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	resp := make([]byte, size)
	if _, err := io.ReadFull(conn, resp); err != nil {
		return nil, err
	}
	if len(resp) < 4 || binary.BigEndian.Uint32(resp) != correlation {
		return nil, errors.New("response with another correlation id")
	}
	return resp[4:], nil
}

func apiVersions(addr string) (int, error) {
	resp, err := roundTrip(addr, 18, 0, nil)
	if err != nil {
		return 0, err
	}
	r := reader{buf: resp}
	if code := r.int16(); code != 0 {
		return 0, fmt.Errorf("ApiVersions: error code %d", code)
	}
	n := r.int32()
	return int(n), r.err
}

func metadata(addr string) ([]string, error) {
	// Metadata v1 with a null topic array: every topic (we read only the brokers).
	resp, err := roundTrip(addr, 3, 1, []byte{0xff, 0xff, 0xff, 0xff})
	if err != nil {
		return nil, err
	}
	r := reader{buf: resp}
	var brokers []string
	for i, n := 0, int(r.int32()); i < n && r.err == nil; i++ {
		r.int32() // node id
		host := r.string()
		port := r.int32()
		r.string() // rack (nullable)
		brokers = append(brokers, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	return brokers, r.err
}

type reader struct {
	buf []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || len(r.buf) < n {
		if r.err == nil {
			r.err = errors.New("short response")
		}
		return make([]byte, max(n, 0))
	}
	out := r.buf[:n]
	r.buf = r.buf[n:]
	return out
}

func (r *reader) int16() int16 { return int16(binary.BigEndian.Uint16(r.take(2))) }
func (r *reader) int32() int32 { return int32(binary.BigEndian.Uint32(r.take(4))) }
func (r *reader) string() string {
	n := r.int16()
	if n < 0 {
		return ""
	}
	return string(r.take(int(n)))
}

package service_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/auth"
	"github.com/accounthealth/accounthealth/server/service"
	"github.com/accounthealth/accounthealth/server/webhook"
)

func tokensFor(t *testing.T, names ...string) (*auth.Tokens, map[string]string) {
	t.Helper()
	var entries []string
	tokens := map[string]string{}
	for _, n := range names {
		tok, entry, err := auth.NewToken(n)
		if err != nil {
			t.Fatal(err)
		}
		tokens[n] = tok
		entries = append(entries, entry)
	}
	ts, err := auth.ParseTokens(strings.NewReader(strings.Join(entries, "\n")), "test")
	if err != nil {
		t.Fatal(err)
	}
	return ts, tokens
}

func bearer(e *env, token string) func(method string) codes.Code {
	return func(method string) codes.Code {
		ctx := e.t.Context()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		err := e.conn.Invoke(ctx, "/accounthealth.v1.AccountHealthService/"+method, &ahv1.GetHealthSummaryRequest{}, &ahv1.GetHealthSummaryResponse{})
		return status.Code(err)
	}
}

func restGet(t testing.TB, client *http.Client, url, token string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestBearerTokens(t *testing.T) {
	ts, tokens := tokensFor(t, "support-tool", "dashboards")
	e, fake := withFake(t, nil, func(c *service.Config) { c.APITokens = ts })
	seed(t, e, fake, "acct", failedBody("acct"))

	// gRPC: no token, a wrong one, a right one.
	if got := bearer(e, "")("GetHealthSummary"); got != codes.Unauthenticated {
		t.Errorf("no token: %s", got)
	}
	if got := bearer(e, tokens["support-tool"]+"x")("GetHealthSummary"); got != codes.Unauthenticated {
		t.Errorf("wrong token: %s", got)
	}
	if got := bearer(e, tokens["dashboards"])("GetHealthSummary"); got != codes.OK {
		t.Errorf("right token: %s", got)
	}
	// Load balancers' health checks need no credential.
	if _, err := healthpb.NewHealthClient(e.conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check without a token: %v", err)
	}

	// REST: the same, and the probes are open.
	summary := "http://" + e.addrs.API + "/v1/health/summary"
	if code, body := restGet(t, http.DefaultClient, summary, ""); code != http.StatusUnauthorized || !strings.Contains(body, "Bearer") {
		t.Errorf("REST without a token: %d %s", code, body)
	}
	if code, _ := restGet(t, http.DefaultClient, summary, tokens["dashboards"]); code != http.StatusOK {
		t.Errorf("REST with a token: %d", code)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, _ := restGet(t, http.DefaultClient, "http://"+e.addrs.API+probe, ""); code != http.StatusOK {
			t.Errorf("%s: %d", probe, code)
		}
	}
	// Metrics tell about traffic and accounts: a scraper needs a token.
	metrics := "http://" + e.addrs.API + "/metrics"
	if code, _ := restGet(t, http.DefaultClient, metrics, ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", code)
	}
	if code, body := restGet(t, http.DefaultClient, metrics, tokens["dashboards"]); code != http.StatusOK || !strings.Contains(body, "accounthealth_webhook_deliveries_received_total") {
		t.Errorf("/metrics with a token: %d", code)
	}

	// Webhooks still need only their signature.
	body := leanBody("accounts.added", "other", "u")
	if r := e.postHTTP(body, webhook.Sign(fixtureSecret, body)); r.http != http.StatusOK {
		t.Errorf("webhook with tokens configured: %d %s", r.http, r.message)
	}

	// The caller's name reaches the audit entry, and nobody can forge it
	// through the gateway.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+e.addrs.API+"/v1/accounts/acct", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["support-tool"])
	req.Header.Set("Grpc-Metadata-X-Accounthealth-Caller", "someone-else")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", res.StatusCode)
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tokens["dashboards"])
	events := &ahv1.ListAccountEventsResponse{}
	if err := e.conn.Invoke(ctx, "/accounthealth.v1.AccountHealthService/ListAccountEvents", &ahv1.ListAccountEventsRequest{AccountId: "acct"}, events); err != nil {
		t.Fatal(err)
	}
	var actor string
	for _, ev := range events.GetEvents() {
		if ev.GetSource() == "api" {
			actor = ev.GetActor()
		}
	}
	if actor != "token:support-tool" {
		t.Errorf("audit actor = %q, want token:support-tool", actor)
	}
	if strings.Contains(e.logs.String(), tokens["support-tool"]) {
		t.Error("a token appears in the log")
	}
}

func TestInternalListenersNeedAuthOffLoopback(t *testing.T) {
	cfg := service.DefaultConfig()
	cfg.WebhookSecrets = []string{"s"}
	cfg.GRPCAddr = "0.0.0.0:9090"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "grpc-addr") || !strings.Contains(err.Error(), "api-tokens-file") {
		t.Fatalf("Validate = %v, want a refusal naming grpc-addr and how to fix it", err)
	}
	cfg.APITokens, _ = tokensFor(t, "a")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with tokens: %v", err)
	}
}

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type pki struct {
	dir                   string
	pool                  *x509.CertPool
	ca                    *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	serverCert, serverKey string
	clientCert, clientKey string
	clientCA              string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), pool: x509.NewCertPool()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.pool.AddCert(p.ca)
	p.clientCA = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert, p.serverKey = p.issue(t, "server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = p.issue(t, "reporting-job", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func (p *pki) issue(t *testing.T, name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pki) clientTLS(t *testing.T, withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	e := start(t, nil, func(c *service.Config) {
		c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = p.serverCert, p.serverKey, p.clientCA
	})
	call := func(cfg *tls.Config) (codes.Code, string) {
		conn, err := grpc.NewClient(e.addrs.GRPC, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = ahv1.NewAccountHealthServiceClient(conn).GetHealthSummary(t.Context(), &ahv1.GetHealthSummaryRequest{})
		st := status.Convert(err)
		return st.Code(), st.Message()
	}
	if code, msg := call(p.clientTLS(t, true)); code != codes.OK {
		t.Errorf("gRPC with a client certificate: %s %s", code, msg)
	}
	if code, msg := call(p.clientTLS(t, false)); code != codes.Unauthenticated || !strings.Contains(msg, "client certificate") {
		t.Errorf("gRPC without one: %s %q", code, msg)
	}

	httpsClient := func(withCert bool) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: p.clientTLS(t, withCert)}}
	}
	if code, body := restGet(t, httpsClient(true), "https://"+e.addrs.API+"/v1/health/summary", ""); code != http.StatusOK {
		t.Errorf("REST with a client certificate: %d %s", code, body)
	}
	if code, _ := restGet(t, httpsClient(false), "https://"+e.addrs.API+"/v1/health/summary", ""); code != http.StatusUnauthorized {
		t.Errorf("REST without one: %d", code)
	}
	// The webhook listener is HTTPS too, and needs no client certificate.
	body := leanBody("accounts.added", "a1", "u")
	req, _ := http.NewRequest(http.MethodPost, "https://"+e.addrs.Webhook+service.WebhookPath, strings.NewReader(string(body)))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
	res, err := httpsClient(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("webhook over HTTPS: %d", res.StatusCode)
	}
	// Plain HTTP gets no answer but a refusal.
	if code, _ := restGet(t, http.DefaultClient, "http://"+e.addrs.API+"/healthz", ""); code == http.StatusOK {
		t.Error("plain HTTP answered on a TLS listener")
	}
}

// A renewed certificate is served without a restart, once reloaded (on
// SIGHUP; the reloader's own check of the files is tested in server/auth).
func TestCertificateReload(t *testing.T) {
	p := newPKI(t)
	e := start(t, nil, func(c *service.Config) { c.TLSCertFile, c.TLSKeyFile = p.serverCert, p.serverKey })
	serial := func() int64 {
		conn, err := tls.Dial("tcp", e.addrs.Webhook, &tls.Config{RootCAs: p.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 2 {
		t.Fatalf("serial %d, want 2", got)
	}
	// Renew in place: same paths, new serial.
	cert, key := p.issue(t, "server", 9, x509.ExtKeyUsageServerAuth)
	if cert != p.serverCert || key != p.serverKey {
		t.Fatal("renewal wrote other files")
	}
	if err := e.srv.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != 9 {
		t.Fatalf("serial %d after the reload, want 9", got)
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// hostileMaxBody is the body cap of the hostile-input tests: small, so
// that bodies at and over it are cheap to send.
const hostileMaxBody = 64 << 10

// Hostile input, through the built binary over real HTTP on the webhook
// listener: each is refused with its exact answer and stores nothing, or,
// being legal, is stored and served.
func TestHostileInput(t *testing.T) {
	s := serve(t, t.TempDir(), fmt.Sprint("ACCOUNTHEALTH_MAX_BODY_BYTES=", hostileMaxBody))

	// Slow-loris: the server's own read timeouts close the connection.
	t.Run("headers trickled", func(t *testing.T) {
		t.Parallel()
		conn := dialWebhook(t, s)
		trickle(conn, "POST /v1/webhooks/argyle HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n")
		if got, err := io.ReadAll(conn); len(got) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("answered %q (%v), want the connection closed without an answer", got, err)
		}
	})
	t.Run("body trickled", func(t *testing.T) {
		t.Parallel()
		conn := dialWebhook(t, s)
		trickle(conn, "POST /v1/webhooks/argyle HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+
			`{"event":"accounts.added","data":{"account":"slow-body",`, " ")
		res := readAnswer(t, conn)
		wantError(t, res, http.StatusBadRequest, ahv1.ErrorReason_DELIVERY_UNREADABLE, "could not read the request body")
		if rest, _ := io.ReadAll(conn); len(rest) != 0 {
			t.Errorf("more after the answer: %q", rest)
		}
		s.wantUnknown(t, "slow-body")
	})

	t.Run("body at the cap", func(t *testing.T) {
		t.Parallel()
		res := s.postSigned(t, padded(connectedJSON("at-cap", "u"), hostileMaxBody))
		wantStatus(t, res, http.StatusOK)
		s.restBody(t, "/v1/accounts/at-cap/health")
	})
	t.Run("body one byte over the cap", func(t *testing.T) {
		t.Parallel()
		res := s.postSigned(t, padded(connectedJSON("over-cap", "u"), hostileMaxBody+1))
		wantError(t, res, http.StatusRequestEntityTooLarge, ahv1.ErrorReason_DELIVERY_TOO_LARGE, "")
		s.wantUnknown(t, "over-cap")
	})
	t.Run("chunked body without end", func(t *testing.T) {
		t.Parallel()
		conn := dialWebhook(t, s)
		chunk := func(data string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(data), data) }
		// The body never ends: an answer proves it was not read to its end.
		trickle(conn, "POST /v1/webhooks/argyle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
			chunk(string(connectedJSON("chunked", "u"))), chunk(strings.Repeat(" ", 4096)))
		wantError(t, readAnswer(t, conn), http.StatusRequestEntityTooLarge, ahv1.ErrorReason_DELIVERY_TOO_LARGE, "")
		s.wantUnknown(t, "chunked")
	})

	t.Run("nesting deeper than readers take", func(t *testing.T) {
		t.Parallel()
		const depth = 1000
		body := fmt.Appendf(nil, `{"event":"accounts.updated","data":{"account":"deep","resource":{"connection":{"status":"connected"},"x":%s1%s}}}`,
			strings.Repeat("[", depth), strings.Repeat("]", depth))
		wantStatus(t, s.postSigned(t, body), http.StatusOK)
		// Served, the part nested too deep as its JSON text.
		if got := s.restBody(t, "/v1/accounts/deep/health"); !strings.Contains(got, strings.Repeat("[", 31)+`"[[[`) {
			t.Errorf("the deep account object is not served as its text: %.300s", got)
		}
	})
	t.Run("nesting deeper than JSON decoding takes", func(t *testing.T) {
		t.Parallel()
		const depth = 10001 // encoding/json's limit is 10000
		body := fmt.Appendf(nil, `{"event":"accounts.updated","data":{"account":"too-deep","resource":{"x":%s%s}}}`,
			strings.Repeat("[", depth), strings.Repeat("]", depth))
		wantError(t, s.postSigned(t, body), http.StatusBadRequest, ahv1.ErrorReason_MALFORMED_DELIVERY, "exceeded max depth")
		s.wantUnknown(t, "too-deep")
	})
	t.Run("numbers beyond float64", func(t *testing.T) {
		t.Parallel()
		long := strings.Repeat("9", 30000)
		body := fmt.Appendf(nil, `{"event":"accounts.updated","data":{"account":"huge","resource":{"connection":{"status":"connected"},"n":1e999999999,"long":%s}}}`, long)
		wantStatus(t, s.postSigned(t, body), http.StatusOK)
		if got := s.restBody(t, "/v1/accounts/huge/health"); !strings.Contains(got, `"1e999999999"`) || !strings.Contains(got, `"`+long+`"`) {
			t.Errorf("out-of-range numbers not served as their text: %.300s", got)
		}
	})

	// net/http's header cap (1 MiB and a little slack), in one header or many.
	t.Run("one huge header", func(t *testing.T) {
		t.Parallel()
		wantHeaderRefused(t, s, "X-Big: "+strings.Repeat("a", 1<<20+8192)+"\r\n")
	})
	t.Run("header flood", func(t *testing.T) {
		t.Parallel()
		var many strings.Builder
		for i := range 20000 {
			fmt.Fprintf(&many, "X-Flood-%d: %s\r\n", i, strings.Repeat("f", 48))
		}
		wantHeaderRefused(t, s, many.String())
	})

	t.Run("h2c upgrade", func(t *testing.T) {
		t.Parallel()
		conn := dialWebhook(t, s)
		_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
		// The upgrade is ignored: the answer is HTTP/1.1's own.
		if res := readAnswer(t, conn); res.StatusCode != http.StatusOK || res.ProtoMajor != 1 || res.Header.Get("Upgrade") != "" {
			t.Errorf("answered %s %s, Upgrade %q; want HTTP/1.1 200 without upgrading", res.Proto, res.Status, res.Header.Get("Upgrade"))
		}
	})
	t.Run("HTTP/2 with prior knowledge", func(t *testing.T) {
		t.Parallel()
		conn := dialWebhook(t, s)
		_, _ = io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
		// net/http hands the preface to the handler as a request for "*",
		// which no route takes; HTTP/2 is never spoken, and the
		// connection closes after the answer.
		res := readAnswer(t, conn)
		if res.StatusCode != http.StatusBadRequest || res.ProtoMajor != 1 {
			t.Errorf("answered %s %s %q, want HTTP/1.1 400", res.Proto, res.Status, res.body)
		}
		if rest, _ := io.ReadAll(conn); len(rest) != 0 {
			t.Errorf("more after the answer: %q", rest)
		}
	})
	t.Run("gRPC on the webhook listener", func(t *testing.T) {
		t.Parallel()
		conn, err := grpc.NewClient(s.webhook, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = ahv1.NewAccountHealthServiceClient(conn).GetHealthSummary(t.Context(), &ahv1.GetHealthSummaryRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("GetHealthSummary on the webhook listener: %v, want it unreachable", err)
		}
	})
	t.Run("internal routes on the webhook listener", func(t *testing.T) {
		t.Parallel()
		s.deliver(t, connectedJSON("internal", "u"))
		for _, path := range []string{"/v1/accounts/internal/health", "/v1/accounts/health", "/v1/accounts/internal/events",
			"/v1/health/summary", "/v1/disconnections:stream", "/metrics", "/openapi.json", "/",
			"/accounthealth.v1.AccountHealthService/GetHealthSummary"} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
				req, _ := http.NewRequest(method, "http://"+s.webhook+path, nil)
				res := do(t, req)
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s on the webhook listener: %d, want 404", method, path, res.StatusCode)
				}
			}
		}
	})
	t.Run("webhook route on the internal listeners", func(t *testing.T) {
		t.Parallel()
		body := connectedJSON("via-grpc", "u")
		// REST does not take deliveries; gRPC does, signed, for the CLI
		// and tests.
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.rest+"/v1/webhooks/argyle", bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
		if res := do(t, req); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST on the REST listener: %d, want 404", res.StatusCode)
		}
		conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := ahv1.NewWebhookServiceClient(conn).ReceiveArgyleWebhook(t.Context(), &ahv1.ReceiveArgyleWebhookRequest{
			Payload: body, Signature: webhook.Sign(fixtureSecret, body),
		}); err != nil {
			t.Fatalf("ReceiveArgyleWebhook over gRPC: %v", err)
		}
		s.restBody(t, "/v1/accounts/via-grpc/health")
	})

	t.Run("wrong method on the webhook route", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.webhook+"/v1/webhooks/argyle", nil)
		res := do(t, req)
		wantError(t, res, http.StatusMethodNotAllowed, ahv1.ErrorReason_METHOD_NOT_ALLOWED, "GET /v1/webhooks/argyle: method not allowed; this path takes POST")
		if allow := res.Header.Get("Allow"); allow != "POST" {
			t.Errorf("Allow %q, want POST", allow)
		}
	})
	t.Run("account id with a lone surrogate", func(t *testing.T) {
		t.Parallel()
		res := s.postSigned(t, []byte(`{"event":"accounts.failed","data":{"account":"bad-\ud800","error_code":"invalid_credentials"}}`))
		wantError(t, res, http.StatusBadRequest, ahv1.ErrorReason_MALFORMED_DELIVERY, "data.account: not valid UTF-8 (a lone surrogate escape)")
		s.wantUnknown(t, "bad-\uFFFD")
	})
	t.Run("account id too long for an index", func(t *testing.T) {
		t.Parallel()
		id := strings.Repeat("x", 8000)
		res := s.postSigned(t, []byte(`{"event":"accounts.failed","data":{"account":"`+id+`","error_code":"invalid_credentials"}}`))
		wantError(t, res, http.StatusBadRequest, ahv1.ErrorReason_MALFORMED_DELIVERY, "data.account: 8000 bytes long, over the 512 an id may have")
	})
}

// answer is an HTTP answer with its body read.
type answer struct {
	*http.Response
	body []byte
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return answer{res, body}
}

// postSigned posts a signed delivery to the webhook route.
func (s *server) postSigned(t *testing.T, body []byte) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.webhook+"/v1/webhooks/argyle", bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(fixtureSecret, body))
	return do(t, req)
}

// wantUnknown checks that nothing was stored for account.
func (s *server) wantUnknown(t *testing.T, account string) {
	t.Helper()
	if code, body := s.restGet(t, "/v1/accounts/"+url.PathEscape(account)+"/health"); code != http.StatusNotFound {
		t.Errorf("account %q was stored: %d %.200s", account, code, body)
	}
}

// padded is body with spaces after it, n bytes in all.
func padded(body []byte, n int) []byte {
	return append(body, bytes.Repeat([]byte(" "), n-len(body))...)
}

func dialWebhook(t *testing.T, s *server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.webhook)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Not a timing bound: it only turns a server that never closes into a
	// failure instead of a hung test.
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	return conn
}

// trickle writes head, then more again and again in the background until
// the connection fails. The pause only paces the sender; the tests wait
// for the server's answer or close, never for a time.
func trickle(conn net.Conn, head, more string) {
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		pace := time.NewTicker(100 * time.Millisecond)
		defer pace.Stop()
		for range pace.C {
			if _, err := io.WriteString(conn, more); err != nil {
				return
			}
		}
	}()
}

// readAnswer reads one HTTP answer from conn.
func readAnswer(t *testing.T, conn net.Conn) answer {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return answer{res, body}
}

// wantHeaderRefused sends a request with headers and checks it is refused
// with 431 before any handler runs.
func wantHeaderRefused(t *testing.T, s *server, headers string) {
	t.Helper()
	conn := dialWebhook(t, s)
	go func() {
		_, _ = io.WriteString(conn, "POST /v1/webhooks/argyle HTTP/1.1\r\nHost: x\r\n"+headers+"Content-Length: 2\r\n\r\n{}")
	}()
	wantStatus(t, readAnswer(t, conn), http.StatusRequestHeaderFieldsTooLarge)
}

func wantStatus(t *testing.T, res answer, code int) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("answered %d %.300s, want %d", res.StatusCode, res.body, code)
	}
}

// wantError checks an error answer: its status, and the service's error
// shape (a google.rpc.Status as JSON) with reason and a message holding
// message.
func wantError(t *testing.T, res answer, code int, reason ahv1.ErrorReason, message string) {
	t.Helper()
	wantStatus(t, res, code)
	var st struct {
		Message string
		Details []struct{ Reason string }
	}
	if err := json.Unmarshal(res.body, &st); err != nil || len(st.Details) != 1 {
		t.Fatalf("error body %q is not the service's error shape: %v", res.body, err)
	}
	if st.Details[0].Reason != reason.String() || !strings.Contains(st.Message, message) {
		t.Errorf("reason %s, message %q; want %s, a message holding %q", st.Details[0].Reason, st.Message, reason, message)
	}
}

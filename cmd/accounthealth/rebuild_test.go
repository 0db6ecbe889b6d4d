package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/store/sqlite"
	"github.com/accounthealth/accounthealth/server/store/storetest"
	"github.com/accounthealth/accounthealth/server/stream"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// seedUnderOlderRules writes, as an older build would have, three accounts
// into the store in dir: one whose login failed (a disconnection to those
// rules), one connected, one logged out. It returns the cursor of the last
// change those rules made.
func seedUnderOlderRules(t *testing.T, dir string) string {
	t.Helper()
	st, err := sqlite.Open(t.Context(), dir, store.Options{Rules: storetest.OlderRules})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bodies := [][]byte{
		failedJSON("acct-failed", "user-1", "invalid_mfa"),
		connectedJSON("acct-ok", "user-2"),
		connectedJSON("acct-out", "user-3"),
		fmt.Appendf(nil, `{"event":"accounts.updated","name":"cli-test","data":{"account":"acct-out","user":"user-3","error_code":"auth_required"}}`),
	}
	for _, b := range bodies {
		env, err := webhook.Decode(b, time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Ingest(t.Context(), []store.Delivery{{Body: b, Name: env.Name, Decoded: env.Delivery, Verified: true}}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := st.LastChangeSeq(t.Context())
	if err != nil || last == 0 {
		t.Fatalf("LastChangeSeq = %d, %v", last, err)
	}
	return stream.EncodeCursor(last)
}

// TestRebuild: records derived under older rules are rebuilt by
// `accounthealth rebuild`, or by `serve` before it takes traffic; a
// subscriber resuming from its old cursor then hears one correction, for
// the one account whose state changes, and nothing it heard before.
func TestRebuild(t *testing.T) {
	for _, how := range []string{"rebuild command", "serve at start"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			cursor := seedUnderOlderRules(t, dir)
			if how == "rebuild command" {
				code, out, errOut := runBinary(t, nil, "rebuild", "--data-dir", dir)
				if code != 0 || !strings.Contains(out, "rebuilt 3 accounts") || !strings.Contains(out, "1 corrected") {
					t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
				}
				if code, out, _ := runBinary(t, nil, "rebuild", "--data-dir", dir); code != 0 || !strings.Contains(out, "nothing to rebuild") {
					t.Errorf("second rebuild: exit %d: %s", code, out)
				}
				if code, _, errOut := runBinary(t, nil, "rebuild", "--data-dir", dir, "now"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "now"`) {
					t.Errorf("rebuild with an argument: exit %d: %s", code, errOut)
				}
				if code, _, errOut := runBinary(t, nil, "rebuild", "--database-url", "postgres://%zz"); code != 1 || !strings.Contains(errOut, "does not parse") {
					t.Errorf("rebuild with a bad database URL: exit %d: %s", code, errOut)
				}
			}
			s := serve(t, dir)
			logs := s.stderr.String()
			if rebuilt := strings.Contains(logs, "rebuilding health from the log"); rebuilt != (how == "serve at start") {
				t.Errorf("serve rebuilt: %v, want %v\n%s", rebuilt, how == "serve at start", logs)
			}
			if how == "serve at start" && !strings.Contains(logs, "rebuild done") {
				t.Errorf("no end of the rebuild logged:\n%s", logs)
			}
			if got := s.grpcState(t, "acct-failed"); got != ahv1.HealthState_HEALTH_STATE_AUTH_FAILED {
				t.Errorf("acct-failed is %s, want AUTH_FAILED", got)
			}
			if got := s.grpcState(t, "acct-out"); got != ahv1.HealthState_HEALTH_STATE_DISCONNECTED {
				t.Errorf("acct-out is %s, want DISCONNECTED", got)
			}

			conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st, err := ahv1.NewAccountHealthServiceClient(conn).StreamDisconnections(t.Context(), &ahv1.StreamDisconnectionsRequest{
				Start: &ahv1.StreamDisconnectionsRequest_ResumeAfter{ResumeAfter: cursor}})
			if err != nil {
				t.Fatal(err)
			}
			var events []*ahv1.DisconnectionEvent
			for len(events) < 2 {
				resp, err := st.Recv()
				if err != nil {
					t.Fatalf("stream: %v after %v", err, events)
				}
				if ev := resp.GetEvent(); ev != nil {
					events = append(events, ev)
					// The correction, then a live event that marks the end.
					if len(events) == 1 {
						s.deliver(t, failedJSON("acct-later", "user-4", "invalid_credentials"))
					}
				}
			}
			c := events[0]
			if c.GetAccountId() != "acct-failed" || c.GetKind() != ahv1.TransitionKind_TRANSITION_KIND_CORRECTED ||
				c.GetPreviousState() != ahv1.HealthState_HEALTH_STATE_DISCONNECTED || c.GetState() != ahv1.HealthState_HEALTH_STATE_AUTH_FAILED ||
				c.GetRemedy().GetAction() != ahv1.RemedyAction_REMEDY_ACTION_RETRY_MFA || c.GetDelivery().GetEventType() != store.EventRebuilt {
				t.Errorf("first event after the old cursor: %v, want the correction of acct-failed from DISCONNECTED to AUTH_FAILED", c)
			}
			if events[1].GetAccountId() != "acct-later" {
				t.Errorf("second event: %v, want acct-later's (nothing else was corrected)", events[1])
			}
			s.stop(t)
		})
	}
}

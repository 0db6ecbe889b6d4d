package health

import (
	"fmt"
	"testing"
)

// TestEnumStrings pins the names other packages and the API print, and the
// fallback for values out of range.
func TestEnumStrings(t *testing.T) {
	tests := []struct {
		v    fmt.Stringer
		want string
	}{
		{StateUnknown, "UNKNOWN"},
		{StateConnecting, "CONNECTING"},
		{StateHealthy, "HEALTHY"},
		{StateAuthFailed, "AUTH_FAILED"},
		{StateDisconnected, "DISCONNECTED"},
		{StateDegraded, "DEGRADED"},
		{StateRemoved, "REMOVED"},
		{State(-1), "INVALID"},
		{State(7), "INVALID"},
		{ActionNone, "NONE"},
		{ActionWait, "WAIT"},
		{ActionReconnect, "RECONNECT"},
		{ActionUpdateCredentials, "UPDATE_CREDENTIALS"},
		{ActionRetryLogin, "RETRY_LOGIN"},
		{ActionRetryMFA, "RETRY_MFA"},
		{ActionContactPayrollProvider, "CONTACT_PAYROLL_PROVIDER"},
		{ActionConnectNewAccount, "CONNECT_NEW_ACCOUNT"},
		{Action(8), "INVALID"},
		{Outcome(0), "UNSPECIFIED"},
		{OutcomeApplied, "APPLIED"},
		{OutcomeStale, "STALE"},
		{OutcomeAfterRemoval, "AFTER_REMOVAL"},
		{OutcomeUnconfirmed, "UNCONFIRMED"},
		{OutcomeNotAccountEvent, "NOT_ACCOUNT_EVENT"},
		{OutcomeDuplicate, "DUPLICATE"},
		{Outcome(7), "INVALID"},
		{KindUnspecified, "UNSPECIFIED"},
		{KindDisconnected, "DISCONNECTED"},
		{KindAuthFailed, "AUTH_FAILED"},
		{KindDegraded, "DEGRADED"},
		{KindRemoved, "REMOVED"},
		{KindRecovered, "RECOVERED"},
		{KindCorrected, "CORRECTED"},
		{KindRemedyRestored, "REMEDY_RESTORED"},
		{KindItemOutageBegan, "ITEM_OUTAGE_BEGAN"},
		{KindItemOutageEnded, "ITEM_OUTAGE_ENDED"},
		{KindFreshnessLost, "FRESHNESS_LOST"},
		{KindFreshnessRestored, "FRESHNESS_RESTORED"},
		{Kind(12), "INVALID"},
		{FreshnessUnknown, "UNKNOWN"},
		{FreshnessFresh, "FRESH"},
		{FreshnessStale, "STALE"},
		{FreshnessRefreshDisabled, "REFRESH_DISABLED"},
		{FreshnessSyncFailed, "SYNC_FAILED"},
		{Freshness(5), "INVALID"},
		{Kind(-1), "INVALID"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T_%s", tt.v, tt.want), func(t *testing.T) {
			if got := tt.v.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNeedsAttention(t *testing.T) {
	for s := StateUnknown; s <= StateRemoved; s++ {
		t.Run(s.String(), func(t *testing.T) {
			want := s == StateAuthFailed || s == StateDisconnected || s == StateDegraded || s == StateRemoved
			if got := s.NeedsAttention(); got != want {
				t.Errorf("NeedsAttention() = %v, want %v", got, want)
			}
		})
	}
}

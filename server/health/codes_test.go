package health

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// documentedCodes is the provider's list (docs/provider.md#error-codes),
// copied so that the tests and the fuzzer need no file; TestDocumentedCodes
// checks the copy against the page.
var documentedCodes = strings.FieldsFunc(`account_disabled,
account_inaccessible, account_incomplete, account_nonunique, account_not_found,
all_employers_connected, auth_method_temporarily_unavailable, auth_required,
connection_unavailable, credentials_managed_by_organization, existing_account_found,
expired_credentials, full_auth_required, insufficient_account_data, invalid_account_type,
invalid_auth, invalid_credentials, invalid_employer_identifier, invalid_login_method,
invalid_login_url, invalid_mfa, invalid_store_identifier, known_employer_redirect,
login_attempts_exceeded, login_cancelled_by_the_user, login_gov_not_linked,
mfa_attempts_exceeded, mfa_cancelled_by_the_user, mfa_exhausted, mfa_not_configured, mfa_timeout,
multi_driver_account, ongoing_refresh_disabled, passkey_limit_reached,
personal_data_access_not_granted, physical_mfa_unsupported, platform_temporarily_unavailable,
platform_unavailable, service_unavailable, session_limit_reached, system_error,
temporary_credentials, tos_required, trial_connections_exhausted, trial_period_expired,
unrecognized_employer_email, unsupported_auth_type, unsupported_business_account,
unsupported_language, unsupported_mfa_method, user_action_timeout.`,
	func(r rune) bool { return r == ',' || r == '.' || unicode.IsSpace(r) })

type codeWant struct {
	category Category
	action   Action
}

// wantCodes is the category table of the spec, written out by hand so the
// tests do not check the code against itself.
var wantCodes = map[string]codeWant{
	"account_inaccessible":                {CategoryProvider, ActionWait},
	"auth_method_temporarily_unavailable": {CategoryProvider, ActionWait},
	"connection_unavailable":              {CategoryProvider, ActionWait},
	"platform_temporarily_unavailable":    {CategoryProvider, ActionWait},
	"platform_unavailable":                {CategoryProvider, ActionWait},
	"service_unavailable":                 {CategoryProvider, ActionWait},
	"system_error":                        {CategoryProvider, ActionWait},
	"trial_connections_exhausted":         {CategoryProvider, ActionWait},
	"trial_period_expired":                {CategoryProvider, ActionWait},

	"auth_required":                    {CategorySession, ActionReconnect},
	"full_auth_required":               {CategorySession, ActionReconnect},
	"expired_credentials":              {CategorySession, ActionUpdateCredentials},
	"temporary_credentials":            {CategorySession, ActionUpdateCredentials},
	"tos_required":                     {CategorySession, ActionReconnect},
	"session_limit_reached":            {CategorySession, ActionReconnect},
	"personal_data_access_not_granted": {CategorySession, ActionReconnect},
	"ongoing_refresh_disabled":         {CategorySession, ActionReconnect},

	"account_disabled":                    {CategoryAccount, ActionContactPayrollProvider},
	"account_incomplete":                  {CategoryAccount, ActionContactPayrollProvider},
	"credentials_managed_by_organization": {CategoryAccount, ActionContactPayrollProvider},
	"login_attempts_exceeded":             {CategoryAccount, ActionContactPayrollProvider},

	"invalid_credentials":         {CategoryLogin, ActionRetryLogin},
	"invalid_auth":                {CategoryLogin, ActionRetryLogin},
	"invalid_login_method":        {CategoryLogin, ActionRetryLogin},
	"invalid_login_url":           {CategoryLogin, ActionRetryLogin},
	"invalid_employer_identifier": {CategoryLogin, ActionRetryLogin},
	"invalid_store_identifier":    {CategoryLogin, ActionRetryLogin},
	"unrecognized_employer_email": {CategoryLogin, ActionRetryLogin},
	"known_employer_redirect":     {CategoryLogin, ActionRetryLogin},
	"account_not_found":           {CategoryLogin, ActionRetryLogin},
	"account_nonunique":           {CategoryLogin, ActionRetryLogin},
	"login_gov_not_linked":        {CategoryLogin, ActionRetryLogin},
	"login_cancelled_by_the_user": {CategoryLogin, ActionRetryLogin},
	"user_action_timeout":         {CategoryLogin, ActionRetryLogin},
	"passkey_limit_reached":       {CategoryLogin, ActionRetryLogin},
	"unsupported_language":        {CategoryLogin, ActionRetryLogin},
	"invalid_mfa":                 {CategoryLogin, ActionRetryMFA},
	"mfa_timeout":                 {CategoryLogin, ActionRetryMFA},
	"mfa_attempts_exceeded":       {CategoryLogin, ActionRetryMFA},
	"mfa_cancelled_by_the_user":   {CategoryLogin, ActionRetryMFA},
	"mfa_exhausted":               {CategoryLogin, ActionRetryMFA},
	"mfa_not_configured":          {CategoryLogin, ActionRetryMFA},
	"unsupported_mfa_method":      {CategoryLogin, ActionRetryMFA},
	"physical_mfa_unsupported":    {CategoryLogin, ActionRetryMFA},

	"existing_account_found":       {CategoryUnsupported, ActionNone},
	"all_employers_connected":      {CategoryUnsupported, ActionNone},
	"insufficient_account_data":    {CategoryUnsupported, ActionConnectNewAccount},
	"invalid_account_type":         {CategoryUnsupported, ActionConnectNewAccount},
	"unsupported_business_account": {CategoryUnsupported, ActionConnectNewAccount},
	"unsupported_auth_type":        {CategoryUnsupported, ActionConnectNewAccount},
	"multi_driver_account":         {CategoryUnsupported, ActionConnectNewAccount},
}

func TestDocumentedCodes(t *testing.T) {
	if len(documentedCodes) != 51 {
		t.Fatalf("the provider documents 51 codes, the copy here has %d", len(documentedCodes))
	}
	if page := codesOnPage(t); !slices.Equal(page, documentedCodes) {
		t.Errorf("docs/provider.md lists %d codes, not the copy here: only on the page %q, only in the copy %q",
			len(page), without(page, documentedCodes), without(documentedCodes, page))
	}
	if len(codeTable) != 51 {
		t.Errorf("Classify knows %d codes, want the 51 documented", len(codeTable))
	}
	if len(wantCodes) != 51 {
		t.Errorf("the expectation table has %d codes, want 51", len(wantCodes))
	}
	if !slices.IsSorted(documentedCodes) || len(slices.Compact(slices.Clone(documentedCodes))) != 51 {
		t.Errorf("the copied list is not sorted and free of duplicates")
	}
	for _, code := range documentedCodes {
		if _, ok := codeTable[code]; !ok {
			t.Errorf("Classify does not know %q", code)
		}
		if _, ok := wantCodes[code]; !ok {
			t.Errorf("no expectation for %q", code)
		}
	}
}

func TestClassifyDocumented(t *testing.T) {
	for _, code := range documentedCodes {
		t.Run(code, func(t *testing.T) {
			got := Classify(code)
			want, ok := wantCodes[code]
			if !ok {
				t.Fatalf("no expectation for %q", code)
			}
			if !got.Known || got.Code != code {
				t.Errorf("Classify(%q) = known %v, code %q; want a known %q", code, got.Known, got.Code, code)
			}
			if got.Category != want.category || got.Action != want.action {
				t.Errorf("Classify(%q) = %v/%v, want %v/%v", code, got.Category, got.Action, want.category, want.action)
			}
			checkSentence(t, got.Message)
		})
	}
}

func TestClassifyDocumentedRemedies(t *testing.T) {
	// The provider spells out what the user does for these
	// (docs/provider.md#remedies).
	tests := []struct {
		code    string
		phrases []string
	}{
		{"auth_required", []string{"Link", "Reconnect", "no credentials"}},
		{"expired_credentials", []string{"Reset the password at the payroll platform", `"Login help"`, "new credentials in Link"}},
		{"account_disabled", []string{"contact their payroll provider"}},
		{"account_inaccessible", []string{"investigating", "no action"}},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			msg := Classify(tt.code).Message
			for _, p := range tt.phrases {
				if !strings.Contains(msg, p) {
					t.Errorf("Classify(%q).Message = %q, want it to mention %q", tt.code, msg, p)
				}
			}
		})
	}
}

func TestClassifyUnknown(t *testing.T) {
	tests := []struct {
		name, code, mention string
	}{
		{"empty", "", "without a code"},
		{"new code", "brand_new_code", `"brand_new_code"`},
		{"other case", "AUTH_REQUIRED", `"AUTH_REQUIRED"`},
		{"padded", " auth_required", `" auth_required"`},
		{"not utf-8", "\xff\xfe", `"\xff\xfe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.code)
			if got.Known || got.Code != tt.code {
				t.Errorf("Classify(%q) = known %v, code %q; want unknown %q", tt.code, got.Known, got.Code, tt.code)
			}
			if got.Category != CategorySession || got.Action != ActionReconnect {
				t.Errorf("Classify(%q) = %v/%v, want SESSION/RECONNECT", tt.code, got.Category, got.Action)
			}
			checkSentence(t, got.Message)
			for _, p := range []string{tt.mention, "Link", "documentation"} {
				if !strings.Contains(got.Message, p) {
					t.Errorf("Classify(%q).Message = %q, want it to mention %q", tt.code, got.Message, p)
				}
			}
		})
	}
}

func TestCategoryString(t *testing.T) {
	tests := []struct {
		c    Category
		want string
	}{
		{CategoryUnspecified, "UNSPECIFIED"},
		{CategoryProvider, "PROVIDER"},
		{CategorySession, "SESSION"},
		{CategoryAccount, "ACCOUNT"},
		{CategoryLogin, "LOGIN"},
		{CategoryUnsupported, "UNSUPPORTED"},
		{Category(-1), "INVALID"},
		{Category(99), "INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Errorf("Category(%d).String() = %q, want %q", int(tt.c), got, tt.want)
			}
		})
	}
}

// codesOnPage reads the list of docs/provider.md#error-codes: the lines
// of the first code block after its heading.
func codesOnPage(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "provider.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Error codes\n")
	_, block, _ := strings.Cut(section, "```text\n")
	block, _, closed := strings.Cut(block, "```")
	if !ok || !closed {
		t.Fatal("docs/provider.md has no code block under \"## Error codes\"")
	}
	return strings.Fields(block)
}

// without returns the elements of a that are not in b.
func without(a, b []string) []string {
	return slices.DeleteFunc(slices.Clone(a), func(s string) bool { return slices.Contains(b, s) })
}

// checkSentence asserts msg is one sentence a person can act on.
func checkSentence(t *testing.T, msg string) {
	t.Helper()
	if msg == "" || !strings.HasSuffix(msg, ".") || strings.Contains(msg, ". ") {
		t.Errorf("message %q is not one sentence", msg)
		return
	}
	if first := msg[0]; first < 'A' || first > 'Z' {
		t.Errorf("message %q does not start with a capital", msg)
	}
}

package health

import "fmt"

// Category groups connection error codes by who can fix the account, which
// decides the state an error puts it in and the remedy offered.
type Category int

const (
	CategoryUnspecified Category = iota
	// CategoryProvider: trouble on the provider's or the payroll platform's
	// side (or our plan with the provider); nobody but them can act.
	CategoryProvider
	// CategorySession: the user can fix the connection in Link.
	CategorySession
	// CategoryAccount: the user must sort something out with their payroll
	// provider before Link can help.
	CategoryAccount
	// CategoryLogin: a login attempt went wrong; trying again usually works.
	CategoryLogin
	// CategoryUnsupported: this account cannot be used as it is.
	CategoryUnsupported
)

var categoryNames = [...]string{"UNSPECIFIED", "PROVIDER", "SESSION", "ACCOUNT", "LOGIN", "UNSUPPORTED"}

func (c Category) String() string {
	if c < 0 || int(c) >= len(categoryNames) {
		return "INVALID"
	}
	return categoryNames[c]
}

// CodeInfo is what we know about one connection error code.
type CodeInfo struct {
	Code     string
	Known    bool // one of the codes the provider documents; false: the safe default below
	Category Category
	Action   Action
	Message  string // one sentence: what the user or operator should do
}

// Classify looks up a connection error code, matched exactly as the
// provider spells it. The provider adds codes without notice, so an unknown
// or empty code is not an error: it gets the remedy that most often works,
// reconnecting in Link, with a sentence naming the code.
func Classify(code string) CodeInfo {
	if info, ok := codeTable[code]; ok {
		info.Code, info.Known = code, true
		return info
	}
	msg := fmt.Sprintf("The provider reported the unrecognized error code %q; reconnect the account in Link, and check the provider's documentation if it persists.", code)
	if code == "" {
		msg = "The provider reported an error without a code; reconnect the account in Link, and check the provider's documentation if it persists."
	}
	return CodeInfo{Code: code, Category: CategorySession, Action: ActionReconnect, Message: msg}
}

// codeTable holds the 51 connection error codes the provider documents
// (docs/provider.md#error-codes). It is read-only.
var codeTable = map[string]CodeInfo{
	// Provider: refreshes are paused until the provider or platform recovers.
	"account_inaccessible":                {Category: CategoryProvider, Action: ActionWait, Message: "The provider cannot access this account and is investigating; no action is needed from the user."},
	"auth_method_temporarily_unavailable": {Category: CategoryProvider, Action: ActionWait, Message: "The payroll platform's sign-in method is temporarily unavailable; wait, refreshes resume once it is back."},
	"connection_unavailable":              {Category: CategoryProvider, Action: ActionWait, Message: "The provider cannot reach the payroll platform right now; wait, refreshes resume once it is back."},
	"platform_temporarily_unavailable":    {Category: CategoryProvider, Action: ActionWait, Message: "The payroll platform is temporarily unavailable; wait, refreshes resume once it is back."},
	"platform_unavailable":                {Category: CategoryProvider, Action: ActionWait, Message: "The payroll platform is unavailable; wait, and escalate to the provider if it lasts."},
	"service_unavailable":                 {Category: CategoryProvider, Action: ActionWait, Message: "The provider's service is unavailable; wait, and escalate to the provider if it lasts."},
	"system_error":                        {Category: CategoryProvider, Action: ActionWait, Message: "The provider hit an internal error; wait, and escalate to the provider if it lasts."},
	"trial_connections_exhausted":         {Category: CategoryProvider, Action: ActionWait, Message: "Our trial plan with the provider has no connections left; an operator must upgrade the plan, the user need not act."},
	"trial_period_expired":                {Category: CategoryProvider, Action: ActionWait, Message: "Our trial period with the provider has expired; an operator must upgrade the plan, the user need not act."},

	// Session: the user fixes the connection in Link.
	"auth_required":                    {Category: CategorySession, Action: ActionReconnect, Message: "Return to Link and press Reconnect on this account; no credentials are needed."},
	"full_auth_required":               {Category: CategorySession, Action: ActionReconnect, Message: "Return to Link, press Reconnect on this account and sign in again fully."},
	"expired_credentials":              {Category: CategorySession, Action: ActionUpdateCredentials, Message: "Reset the password at the payroll platform (\"Login help\" in Link), then enter the new credentials in Link."},
	"temporary_credentials":            {Category: CategorySession, Action: ActionUpdateCredentials, Message: "Replace the temporary password with a permanent one at the payroll platform, then enter the new credentials in Link."},
	"tos_required":                     {Category: CategorySession, Action: ActionReconnect, Message: "Accept the payroll platform's terms of service on its site, then press Reconnect in Link."},
	"session_limit_reached":            {Category: CategorySession, Action: ActionReconnect, Message: "Sign out of the payroll platform's other sessions, then press Reconnect in Link."},
	"personal_data_access_not_granted": {Category: CategorySession, Action: ActionReconnect, Message: "Press Reconnect in Link and grant access to the personal data when asked."},
	"ongoing_refresh_disabled":         {Category: CategorySession, Action: ActionReconnect, Message: "Data refreshes are turned off for this account; press Reconnect in Link to turn them back on."},

	// Account: the user must act at their payroll provider.
	"account_disabled":                    {Category: CategoryAccount, Action: ActionContactPayrollProvider, Message: "The account is disabled at the payroll platform; the user must contact their payroll provider to re-enable it."},
	"account_incomplete":                  {Category: CategoryAccount, Action: ActionContactPayrollProvider, Message: "The account's setup is incomplete at the payroll platform; the user must finish it there or contact their payroll provider."},
	"credentials_managed_by_organization": {Category: CategoryAccount, Action: ActionContactPayrollProvider, Message: "The user's organization manages these credentials; the user must ask their employer's payroll administrator for access."},
	"login_attempts_exceeded":             {Category: CategoryAccount, Action: ActionContactPayrollProvider, Message: "The payroll platform locked the account after too many login attempts; the user must contact their payroll provider to unlock it."},

	// Login: the attempt is retried in Link.
	"invalid_credentials":         {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The username or password was wrong; retry the login in Link with the correct credentials."},
	"invalid_auth":                {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The login details were not accepted; retry the login in Link with the correct credentials."},
	"invalid_login_method":        {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The login method chosen does not work for this account; retry the login in Link with the method the payroll platform expects."},
	"invalid_login_url":           {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The login URL entered is not the payroll platform's; retry the login in Link with the correct URL."},
	"invalid_employer_identifier": {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The employer identifier was wrong; retry the login in Link with the correct one."},
	"invalid_store_identifier":    {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The store identifier was wrong; retry the login in Link with the correct one."},
	"unrecognized_employer_email": {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The payroll platform does not recognize the email; retry the login in Link with the email the employer has on file."},
	"known_employer_redirect":     {Category: CategoryLogin, Action: ActionRetryLogin, Message: "This employer is served through another payroll platform; retry in Link and pick the employer's platform."},
	"account_not_found":           {Category: CategoryLogin, Action: ActionRetryLogin, Message: "No account matches these login details; retry the login in Link with the correct details and platform."},
	"account_nonunique":           {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The login details match more than one account; retry the login in Link with details that identify one account."},
	"login_gov_not_linked":        {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The Login.gov account is not linked to the payroll platform; link it there, then retry the login in Link."},
	"login_cancelled_by_the_user": {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The user cancelled the login; retry the login in Link when ready."},
	"user_action_timeout":         {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The login timed out waiting for the user; retry the login in Link."},
	"passkey_limit_reached":       {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The payroll platform's passkey limit was reached; remove an unused passkey there, then retry the login in Link."},
	"unsupported_language":        {Category: CategoryLogin, Action: ActionRetryLogin, Message: "The payroll account's language is not supported; switch it to a supported language at the payroll platform, then retry the login in Link."},
	"invalid_mfa":                 {Category: CategoryLogin, Action: ActionRetryMFA, Message: "The multi-factor authentication answer was wrong; retry in Link and enter the correct code."},
	"mfa_timeout":                 {Category: CategoryLogin, Action: ActionRetryMFA, Message: "The multi-factor authentication request timed out; retry in Link and answer it promptly."},
	"mfa_attempts_exceeded":       {Category: CategoryLogin, Action: ActionRetryMFA, Message: "Too many wrong multi-factor authentication answers; wait a while, then retry in Link."},
	"mfa_cancelled_by_the_user":   {Category: CategoryLogin, Action: ActionRetryMFA, Message: "The user cancelled multi-factor authentication; retry in Link when ready."},
	"mfa_exhausted":               {Category: CategoryLogin, Action: ActionRetryMFA, Message: "The multi-factor authentication attempts were used up; retry in Link later."},
	"mfa_not_configured":          {Category: CategoryLogin, Action: ActionRetryMFA, Message: "Multi-factor authentication is not set up at the payroll platform; set it up there, then retry in Link."},
	"unsupported_mfa_method":      {Category: CategoryLogin, Action: ActionRetryMFA, Message: "The account's multi-factor authentication method is not supported; choose another method at the payroll platform, then retry in Link."},
	"physical_mfa_unsupported":    {Category: CategoryLogin, Action: ActionRetryMFA, Message: "Physical security keys are not supported; choose another multi-factor method at the payroll platform, then retry in Link."},

	// Unsupported: this account cannot be used.
	"existing_account_found":       {Category: CategoryUnsupported, Action: ActionNone, Message: "This account is already connected as another account of the user; nothing to do, and this duplicate may be deleted."},
	"all_employers_connected":      {Category: CategoryUnsupported, Action: ActionNone, Message: "Every employer behind this login is already connected; nothing to do, and this account may be deleted."},
	"insufficient_account_data":    {Category: CategoryUnsupported, Action: ActionConnectNewAccount, Message: "The account holds too little data to be used; connect a different payroll account in Link."},
	"invalid_account_type":         {Category: CategoryUnsupported, Action: ActionConnectNewAccount, Message: "This type of account is not supported; connect a different payroll account in Link."},
	"unsupported_business_account": {Category: CategoryUnsupported, Action: ActionConnectNewAccount, Message: "Business accounts are not supported; connect a personal payroll account in Link."},
	"unsupported_auth_type":        {Category: CategoryUnsupported, Action: ActionConnectNewAccount, Message: "The account's way of signing in is not supported; connect a different payroll account in Link."},
	"multi_driver_account":         {Category: CategoryUnsupported, Action: ActionConnectNewAccount, Message: "Accounts shared by several drivers are not supported; connect an individual driver's account in Link."},
}

// retryLoginMessage is the sentence for a failed login whose code would tell
// a connected account to reconnect (a session code, an unknown code or
// none): a login that never completed is retried instead.
func retryLoginMessage(code string) string {
	if msg, ok := retryLoginMessages[code]; ok {
		return msg
	}
	if code == "" {
		return "The login attempt failed and the provider gave no reason; retry the login in Link."
	}
	return fmt.Sprintf("The login attempt failed with the unrecognized error code %q; retry the login in Link, and check the provider's documentation if it persists.", code)
}

// retryLoginMessages words the session codes whose remedy is Reconnect for a
// failed login. It is read-only.
var retryLoginMessages = map[string]string{
	"auth_required":                    "The payroll platform ended the login before it completed; retry the login in Link.",
	"full_auth_required":               "The payroll platform needs a full sign-in; retry the login in Link and sign in fully.",
	"tos_required":                     "Accept the payroll platform's terms of service on its site, then retry the login in Link.",
	"session_limit_reached":            "Sign out of the payroll platform's other sessions, then retry the login in Link.",
	"personal_data_access_not_granted": "Retry the login in Link and grant access to the personal data when asked.",
	"ongoing_refresh_disabled":         "Data refreshes are turned off for this account; retry the login in Link to turn them back on.",
}

package testbed

import (
	"net/http"
	"time"
)

// AnyAudience is the WLCG audience meaning "any relying party"; tokens
// carry it unless the request names an audience.
const AnyAudience = "https://wlcg.cern.ch/jwt/v1/any"

// Grant types, as sent in grant_type and listed in a client's grants.
// ClientSpec.Grants also accepts the short names "device", "refresh",
// "exchange", "client_credentials" and "password".
const (
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantRefreshToken      = "refresh_token"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
)

// Options configure a test bed. The zero value is usable: http on a random
// 127.0.0.1 port, the demo users and the demo client, default lifetimes, a
// ticking clock.
type Options struct {
	// HTTPS serves the provider (and the storage) over TLS with a server
	// certificate for localhost, 127.0.0.1 and ::1 issued by a CA the test
	// bed generates (or reuses from Dir). The CA's PEM file is CAFile.
	HTTPS bool
	// Addr is the provider's listen address; default "127.0.0.1:0".
	Addr string
	// StorageAddr is the storage's listen address; default "127.0.0.1:0".
	StorageAddr string
	// Dir holds the CA, the server certificate, the signing key, the admin
	// token and testbed.json. A Dir that already holds a CA and a signing
	// key is reused (so a CA installed in a trust store, or keys cached by
	// scitokens, stay valid across restarts). Empty: a temporary directory
	// removed by Close. Start uses t.TempDir().
	Dir string

	// Users who can log in. Nil means DemoUsers().
	Users []User
	// Clients are registered before the provider starts, in addition to
	// the public demo client (DemoClientID) unless NoDemoClient is set.
	Clients      []ClientSpec
	NoDemoClient bool

	// Lifetimes of tokens and device codes; zero fields take defaults.
	Lifetimes Lifetimes
	// Clock drives token times and every expiry decision. Nil means
	// RealClock().
	Clock *Clock
	// DefaultAudience is the aud of tokens requested without an audience;
	// default AnyAudience.
	DefaultAudience string

	// Storage starts the WLCG WebDAV storage on its own listener
	// (StorageURL). Its root directory is Dir/storage.
	Storage bool
	// StorageHandler builds the storage handler instead of
	// integrations/testbed/storage; it implies Storage.
	StorageHandler func(StorageEnv) (http.Handler, error)

	// Logf, when set, receives one line per request: method, path,
	// endpoint, grant type and status. Never tokens or secrets.
	Logf func(format string, args ...any)

	// RecordSecret, when set, is called with every secret the test bed
	// issues: access, ID and refresh tokens, client secrets, registration
	// access tokens, device codes, and the users' passwords. Leak scans
	// search outputs for them. Nil: the file named by
	// $TOKENHELPER_TESTBED_SECRETS (EnvRecordSecrets), if set.
	RecordSecret func(kind SecretKind, value string)
}

// StorageEnv is what a storage handler needs to know about the test bed.
type StorageEnv struct {
	// Issuer is the provider's issuer URL (no trailing slash).
	Issuer string
	// HTTPClient reaches the provider (it trusts the test bed's CA).
	HTTPClient *http.Client
	// URL is the storage's base URL, with a trailing slash
	// (scheme://127.0.0.1:PORT/storage/).
	URL string
	// Prefix is the URL path the handler is mounted at ("/storage"): URL
	// path /storage/home/alice is the storage path /home/alice, which is
	// what scope paths (storage.read:/home/alice) name.
	Prefix string
	// Audiences the storage must accept: its origin without trailing slash
	// (scheme://127.0.0.1:PORT, the WLCG recommended form) and AnyAudience.
	Audiences []string
	// Root is the directory the storage serves (created, mode 0700).
	Root string
	// Now is the test bed's clock.
	Now func() time.Time
}

// Lifetimes of what the provider issues. Zero fields take the defaults.
type Lifetimes struct {
	// Access token lifetime; default 20 minutes (WLCG recommendation).
	Access time.Duration
	// Refresh token lifetime, counted from its issue; every rotation issues
	// a new one with a full lifetime. Default 30 days.
	Refresh time.Duration
	// DeviceCode lifetime; default 10 minutes.
	DeviceCode time.Duration
	// PollInterval announced for the device flow, rounded up to whole
	// seconds; default 5 s (the RFC 8628 default). Tests use 1 s.
	PollInterval time.Duration
}

func (l Lifetimes) withDefaults() Lifetimes {
	if l.Access <= 0 {
		l.Access = 20 * time.Minute
	}
	if l.Refresh <= 0 {
		l.Refresh = 30 * 24 * time.Hour
	}
	if l.DeviceCode <= 0 {
		l.DeviceCode = 10 * time.Minute
	}
	if l.PollInterval <= 0 {
		l.PollInterval = 5 * time.Second
	}
	return l
}

// User is an account that can log in at the provider.
type User struct {
	// Name is the login name (preferred_username).
	Name string
	// Password, checked by the approval page and the password grant.
	Password string
	// Subject is the sub claim; default: a stable UUID derived from Name.
	Subject string
	// Email, optional.
	Email string
	// Groups in WLCG form ("/wlcg", "/wlcg/xfers"), in order; they go into
	// wlcg.groups when the wlcg.groups scope is granted.
	Groups []string
	// Scopes the user may be granted beyond the basic ones (openid,
	// profile, email, offline_access, wlcg, wlcg.groups): storage scopes
	// with a path ("storage.read:/", "storage.modify:/home/alice") cover
	// their sub-paths, as IAM's path-aware scope policies do; other scopes
	// ("compute.read") must match exactly. Scopes a user may not have are
	// dropped from the grant, as IAM does.
	Scopes []string
}

// DemoClientID is the public client every test bed has unless
// Options.NoDemoClient is set: device and refresh grants, any scope.
const DemoClientID = "tokenhelper-demo"

// DemoUsers returns the default accounts:
//
//	alice / alice-password: groups /wlcg, /wlcg/xfers; storage.read:/,
//	  storage.create:/, storage.modify:/home/alice, storage.stage:/,
//	  compute.read, compute.create, compute.modify, compute.cancel
//	bob / bob-password: group /wlcg; storage.read:/public,
//	  storage.modify:/home/bob
func DemoUsers() []User {
	return []User{
		{
			Name:     "alice",
			Password: "alice-password",
			Email:    "alice@example.org",
			Groups:   []string{"/wlcg", "/wlcg/xfers"},
			Scopes: []string{
				"storage.read:/", "storage.create:/", "storage.modify:/home/alice", "storage.stage:/",
				"compute.read", "compute.create", "compute.modify", "compute.cancel",
			},
		},
		{
			Name:     "bob",
			Password: "bob-password",
			Email:    "bob@example.org",
			Groups:   []string{"/wlcg"},
			Scopes:   []string{"storage.read:/public", "storage.modify:/home/bob"},
		},
	}
}

// ClientSpec describes an OAuth client registered by an administrator
// (RegisterClient, Options.Clients). Clients registered dynamically
// (RFC 7591) get the same shape.
type ClientSpec struct {
	// ID; generated when empty.
	ID string
	// Secret; generated when empty unless Public.
	Secret string
	// Name is shown on the approval page.
	Name string
	// Grants the client may use (grant type URNs or short names). Empty
	// means device code and refresh token.
	Grants []string
	// AllowPassword permits the password grant, which IAM grants only on an
	// administrator's request. Listing "password" in Grants does the same.
	AllowPassword bool
	// Public clients have no secret (token_endpoint_auth_method "none").
	Public bool
	// AuthMethod: "client_secret_basic" (default) or "client_secret_post";
	// ignored for public clients.
	AuthMethod string
	// Scopes the client may ask for (same matching as User.Scopes, plus
	// basic scopes must be listed too). Empty means any scope.
	Scopes []string
	// RedirectURIs are recorded and echoed; the test bed has no
	// authorization code flow.
	RedirectURIs []string
}

package testbed

import (
	"os"
	"strings"
	"sync"
)

// SecretKind names a kind of secret the test bed issues, for
// Options.RecordSecret.
type SecretKind string

// The secrets a test bed records.
const (
	SecretAccessToken       SecretKind = "access_token"
	SecretIDToken           SecretKind = "id_token"
	SecretRefreshToken      SecretKind = "refresh_token"
	SecretClientSecret      SecretKind = "client_secret"
	SecretRegistrationToken SecretKind = "registration_access_token"
	SecretDeviceCode        SecretKind = "device_code"
	// SecretPassword is a user's password (from Options.Users, DemoUsers
	// or AddUser).
	SecretPassword SecretKind = "password"
)

// EnvRecordSecrets names a file to which every test bed of the process
// appends each secret it issues, one "KIND<TAB>VALUE" line, when
// Options.RecordSecret is nil. The file is created with mode 0600 and only
// ever appended to, so test processes running at the same time can share
// it. Leak scans (integrations/reliability) set it for a whole `go test`
// run, then search everything the tests printed, logged and left behind
// for these values. Unset (the normal case), nothing is recorded.
const EnvRecordSecrets = "TOKENHELPER_TESTBED_SECRETS"

// secretRecorder hands each issued secret to Options.RecordSecret or to
// the EnvRecordSecrets file.
type secretRecorder struct {
	fn   func(SecretKind, string)
	mu   sync.Mutex
	file *os.File
}

// newSecretRecorder uses fn, else the file $TOKENHELPER_TESTBED_SECRETS
// names, else records nothing.
func newSecretRecorder(fn func(SecretKind, string)) (*secretRecorder, error) {
	r := &secretRecorder{fn: fn}
	if fn != nil {
		return r, nil
	}
	path := os.Getenv(EnvRecordSecrets)
	if path == "" {
		return r, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	r.file = f
	return r, nil
}

// record reports one secret; empty values are skipped. A nil recorder
// records nothing.
func (r *secretRecorder) record(kind SecretKind, value string) {
	if r == nil || value == "" {
		return
	}
	if r.fn != nil {
		r.fn(kind, value)
		return
	}
	if r.file == nil {
		return
	}
	// Secrets never hold a newline or tab (base64url, JWTs); a password
	// might, and must stay on its line.
	value = strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(value)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.file.WriteString(string(kind) + "\t" + value + "\n") // one write: appends do not interleave
}

func (r *secretRecorder) close() {
	if r == nil || r.file == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.file.Close()
	r.file = nil
}

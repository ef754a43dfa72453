package testbed

import (
	"fmt"
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
	err  error // the first failed write: the record is incomplete
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
	if r.file == nil {
		return // closed
	}
	// One write: appends do not interleave.
	if _, err := r.file.WriteString(string(kind) + "\t" + value + "\n"); err != nil && r.err == nil {
		r.err = err
	}
}

// close closes the file. Its error says the record is incomplete (a leak
// scan trusting it could miss a leak).
func (r *secretRecorder) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		if err := r.file.Close(); err != nil && r.err == nil {
			r.err = err
		}
		r.file = nil
	}
	if r.err != nil {
		return fmt.Errorf("the secrets recorded in $%s are incomplete: %w", EnvRecordSecrets, r.err)
	}
	return nil
}

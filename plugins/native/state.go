package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
	"github.com/tokenhelper/tokenhelper/helper/secret"
)

// Account file format.
const (
	accountFormat  = "tokenhelper-native-account"
	accountVersion = 1
	// maxAccountSize bounds account.json (a few KiB in practice).
	maxAccountSize = 1 << 20
)

// account is account.json: everything the backend keeps about a profile's
// client and session. Secrets are age files sealed to the profile's key.
type account struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Profile string `json:"profile"`
	Issuer  string `json:"issuer"`

	Endpoints Endpoints `json:"endpoints"`

	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name,omitempty"`
	// ClientAuth is the token_endpoint_auth_method the client uses.
	ClientAuth string `json:"client_auth"`
	// Dynamic is true when tokenhelper registered the client (RFC 7591)
	// and may delete it (RFC 7592).
	Dynamic               bool      `json:"dynamic,omitempty"`
	RegistrationClientURI string    `json:"registration_client_uri,omitempty"`
	RegisteredAt          time.Time `json:"registered_at,omitzero"`
	GrantTypes            []string  `json:"grant_types,omitempty"`

	// Flow is the login grant the session came from.
	Flow string `json:"flow,omitempty"`
	// Scopes granted at the last login.
	Scopes []string `json:"scopes,omitempty"`
	// Subject and Username of the person logged in (from the tokens).
	Subject  string `json:"subject,omitempty"`
	Username string `json:"username,omitempty"`

	LoggedInAt    time.Time `json:"logged_in_at,omitzero"`
	RefreshedAt   time.Time `json:"refreshed_at,omitzero"`
	RefreshExpiry time.Time `json:"refresh_token_expiry,omitzero"`
	// SessionEnded records when and why the provider refused the refresh
	// token (which was then removed).
	SessionEnded    time.Time `json:"session_ended,omitzero"`
	SessionEndCause string    `json:"session_end_cause,omitempty"`

	Created time.Time `json:"created"`

	Secrets sealedSecrets `json:"secrets"`
}

// sealedSecrets are age files (binary; base64 in the JSON).
type sealedSecrets struct {
	ClientSecret            []byte `json:"client_secret,omitempty"`
	RefreshToken            []byte `json:"refresh_token,omitempty"`
	RegistrationAccessToken []byte `json:"registration_access_token,omitempty"`
}

// store is where a profile's state lives.
type store struct {
	profile string
	dir     string // StateDir/profiles/NAME
	lockDir string // StateDir/locks
}

func (s store) accountPath() string { return filepath.Join(s.dir, "account.json") }

func (s store) key() secret.Key {
	return secret.Key{Path: filepath.Join(s.dir, "key.json"), Profile: s.profile}
}

func (s store) flag() string {
	if s.profile == "" {
		return ""
	}
	return " -p " + s.profile
}

func (s store) forgetFix() string {
	return "tokenhelper logout --forget" + s.flag() + ", then tokenhelper register" + s.flag()
}

// exists reports whether account.json exists.
func (s store) exists() (bool, error) {
	_, err := os.Lstat(s.accountPath())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot check %s: %v", s.accountPath(), errnoText(err)))
	}
	return true, nil
}

// errNotRegistered marks the "no account.json" case.
var errNotRegistered = errors.New("not registered")

// load reads account.json. A missing file is a KindLoginNeeded error
// wrapping errNotRegistered; a file others can read or that is not ours is
// KindUnsafe; a damaged one is KindInternal with the way out.
func (s store) load() (*account, error) {
	path := s.accountPath()
	f, err := os.OpenFile(path, os.O_RDONLY|syscallNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &helper.Error{
			Kind: helper.KindLoginNeeded,
			Msg:  fmt.Sprintf("profile %q is not registered (no %s)", s.profile, path),
			Fix:  "run: tokenhelper register" + s.flag(),
			Err:  errNotRegistered,
		}
	}
	if err != nil {
		if isSymlinkErr(err) {
			return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: path + " is a symbolic link", Err: err}).WithFix("remove it: %s", s.forgetFix())
		}
		return nil, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot open %s: %v", path, errnoText(err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot stat "+path)
	}
	if !fi.Mode().IsRegular() {
		return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: path + " is not a regular file"}).WithFix("remove it: %s", s.forgetFix())
	}
	if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
		return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("%s belongs to uid %d, not to you", path, uid)}).WithFix("remove it: %s", s.forgetFix())
	}
	if !safefile.Private(fi) {
		return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("%s is accessible by others (mode %04o)", path, fi.Mode().Perm())}).
			WithFix("chmod 600 %s", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAccountSize+1))
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot read %s: %v", path, errnoText(err)))
	}
	a, err := parseAccount(data)
	if err != nil {
		return nil, &helper.Error{Kind: helper.KindInternal, Msg: fmt.Sprintf("%s is unusable: %v", path, err), Fix: s.forgetFix(), Err: err}
	}
	if a.Profile != s.profile {
		return nil, &helper.Error{Kind: helper.KindInternal, Msg: fmt.Sprintf("%s belongs to profile %q, not %q", path, clean(a.Profile, 64), s.profile), Fix: s.forgetFix()}
	}
	return a, nil
}

// parseAccount decodes and checks account.json.
func parseAccount(data []byte) (*account, error) {
	if len(data) > maxAccountSize {
		return nil, errors.New("larger than 1 MiB")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var a account
	if err := dec.Decode(&a); err != nil {
		return nil, errors.New("not valid JSON")
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	switch {
	case a.Format != accountFormat:
		return nil, fmt.Errorf("format is %q, not %q", clean(a.Format, 64), accountFormat)
	case a.Version != accountVersion:
		return nil, fmt.Errorf("version %d is not supported (this tokenhelper reads version %d)", a.Version, accountVersion)
	case a.Issuer == "" || a.ClientID == "":
		return nil, errors.New("issuer or client_id is missing")
	case !printableASCII(a.ClientID):
		return nil, errors.New("client_id is malformed")
	case checkEndpoint(a.Endpoints.Token) != nil:
		return nil, errors.New("the token endpoint is missing or not https")
	}
	switch a.ClientAuth {
	case authBasic, authPost, authNone:
	default:
		return nil, fmt.Errorf("unknown client authentication %q", clean(a.ClientAuth, 64))
	}
	for _, e := range []*string{&a.Endpoints.DeviceAuthorization, &a.Endpoints.Registration, &a.Endpoints.Revocation, &a.RegistrationClientURI} {
		if *e != "" && checkEndpoint(*e) != nil {
			*e = ""
		}
	}
	return &a, nil
}

// tempPrefix starts the names of the temporary files save writes before
// renaming them over account.json (helper/safefile's naming).
const tempPrefix = ".account.json.tmp-"

// interruptedWrites returns the account states that writes of
// account.json left in temporary files when their process died before the
// rename (newest first, at most 8), and the paths of all such files. A
// file cut short by the kill does not parse and is left out of the
// states. Only regular private files of ours are read.
func (s store) interruptedWrites() (states []*account, paths []string) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil
	}
	type cand struct {
		path string
		mod  time.Time
	}
	var cands []cand
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		paths = append(paths, p)
		if uid, ok := safefile.Owner(fi); (ok && uid != os.Geteuid()) || !safefile.Private(fi) || fi.Size() > maxAccountSize {
			continue
		}
		cands = append(cands, cand{p, fi.ModTime()})
	}
	slices.SortFunc(cands, func(a, b cand) int { return b.mod.Compare(a.mod) })
	for _, c := range cands[:min(len(cands), 8)] {
		data, err := os.ReadFile(c.path)
		if err != nil {
			continue
		}
		if a, err := parseAccount(data); err == nil && a.Profile == s.profile {
			states = append(states, a)
		}
	}
	return states, paths
}

// removeStaleWrites removes the temporary files of account.json writes
// interrupted more than age ago (a write takes milliseconds: they are
// leftovers of killed processes, not writes in progress).
func (s store) removeStaleWrites(age time.Duration) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

// removeFiles removes files, ignoring errors (leftovers of interrupted
// writes).
func removeFiles(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

// save writes account.json atomically (temp file, fsync, rename, fsync of
// the directory), mode 0600 in a 0700 directory.
func (s store) save(a *account) error {
	a.Format, a.Version, a.Profile = accountFormat, accountVersion, s.profile
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return helper.Wrap(helper.KindInternal, err, "cannot encode account.json")
	}
	if err := safefile.MkdirPrivate(s.dir); err != nil {
		return writeErr(err, s.dir)
	}
	if err := safefile.WriteFile(s.accountPath(), append(data, '\n'), 0o600); err != nil {
		return writeErr(err, s.accountPath())
	}
	return nil
}

func writeErr(err error, path string) *helper.Error {
	kind := helper.KindInternal
	if errors.Is(err, safefile.ErrForeignOwner) || errors.Is(err, safefile.ErrSymlink) || errors.Is(err, safefile.ErrNotRegular) {
		kind = helper.KindUnsafe
	}
	return helper.Wrap(kind, err, fmt.Sprintf("cannot write %s: %v", path, err))
}

// removeAccount deletes account.json and the profile directory when it is
// left empty. The key file is removed by secret.Key.Forget.
func (s store) removeAccount() error {
	if err := os.Remove(s.accountPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot remove %s: %v", s.accountPath(), errnoText(err)))
	}
	// Leftover temporary files of interrupted writes, then the directory
	// itself if nothing else is in it.
	if entries, err := os.ReadDir(s.dir); err == nil {
		for _, e := range entries {
			if n := e.Name(); len(n) > 0 && n[0] == '.' && !e.IsDir() {
				os.Remove(filepath.Join(s.dir, n))
			}
		}
	}
	// Not empty (the key file, when removed later) is fine.
	_ = os.Remove(s.dir)
	return nil
}

// sealer encrypts secrets to the profile's key. It is built from the key
// file before a request is sent, so storing the answer needs no file read.
type sealer struct{ r *age.X25519Recipient }

func (s store) sealer() (*sealer, error) {
	kf, err := s.key().Load()
	if err != nil {
		return nil, err
	}
	r, err := age.ParseX25519Recipient(kf.Recipient)
	if err != nil {
		return nil, &helper.Error{Kind: helper.KindInternal, Msg: "the key file of profile " + s.profile + " holds an invalid recipient", Fix: s.forgetFix()}
	}
	return &sealer{r: r}, nil
}

func (s *sealer) seal(plaintext string) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, s.r)
	if err == nil {
		_, err = io.WriteString(w, plaintext)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encrypt a secret")
	}
	return buf.Bytes(), nil
}

// open decrypts a sealed secret ("" for none).
func open(id *secret.Identity, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	b, err := id.Open(sealed)
	if err != nil {
		return "", err
	}
	s := string(b)
	clear(b)
	if !printableASCII(s) {
		return "", helper.Errorf(helper.KindInternal, "a stored secret is damaged (not printable text)")
	}
	return s, nil
}

func errnoText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

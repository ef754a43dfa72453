package secret

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// Key names one profile's key file. Profile is used in messages and in the
// commands that fixes suggest.
type Key struct {
	Path    string
	Profile string
}

// KeyOptions tune key creation and unlocking. The zero value is right for
// real use; tests lower WorkFactor to run fast.
type KeyOptions struct {
	// WorkFactor is the scrypt log2(N) used when (re-)encrypting the
	// identity; 0 means DefaultWorkFactor. Valid: 1..MaxWorkFactor.
	WorkFactor int
	// MaxWorkFactor is the largest scrypt log2(N) accepted when unlocking;
	// 0 means DefaultMaxWorkFactor.
	MaxWorkFactor int
	// Warn receives warnings meant for the person (plaintext mode). The
	// CLI must set it; nil drops them.
	Warn func(msg string)
	// Now stamps new key files and tells the unlock cache the time; nil
	// means time.Now.
	Now func() time.Time
}

func (o KeyOptions) workFactor() (int, error) {
	w := o.WorkFactor
	if w == 0 {
		w = DefaultWorkFactor
	}
	if w < 1 || w > o.maxWorkFactor() {
		return 0, helper.Errorf(helper.KindInternal, "scrypt work factor %d out of range 1..%d", w, o.maxWorkFactor())
	}
	return w, nil
}

func (o KeyOptions) maxWorkFactor() int {
	if o.MaxWorkFactor <= 0 || o.MaxWorkFactor > 30 {
		return DefaultMaxWorkFactor
	}
	return o.MaxWorkFactor
}

func (o KeyOptions) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func (o KeyOptions) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// CacheID is the unlock-cache name of the key: "tokenhelper:v1:" and a hash
// of the key file's absolute path. It depends on the path only, so a key
// can be locked and forgotten even when its file is corrupt or gone.
func (k Key) CacheID() string {
	p := k.Path
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	sum := sha256.Sum256([]byte(p))
	return "tokenhelper:v1:" + hex.EncodeToString(sum[:12])
}

func (k Key) name() string {
	if k.Profile == "" {
		return "the default profile"
	}
	return "profile " + k.Profile
}

func (k Key) flag() string {
	if k.Profile == "" {
		return ""
	}
	return " -p " + k.Profile
}

// forgetFix is the way out of a lost passphrase or a broken key file.
func (k Key) forgetFix() string {
	return "tokenhelper logout --forget" + k.flag() + ", then register again"
}

// Exists reports whether the key file exists (without validating it).
func (k Key) Exists() (bool, error) {
	_, err := os.Lstat(k.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot check key file %s of %s", k.Path, k.name()))
	}
	return true, nil
}

// Load reads and validates the key file. A missing file is KindLoginNeeded
// (wrapping fs.ErrNotExist); a file others can read or that belongs to
// another user is KindUnsafe; a corrupt or unreadable file is KindInternal.
func (k Key) Load() (*KeyFile, error) {
	f, err := os.Open(k.Path)
	if errors.Is(err, fs.ErrNotExist) {
		e := helper.LoginNeeded(k.Profile, fmt.Sprintf("%s has no key file (%s): not logged in", k.name(), k.Path))
		e.Err = err
		return nil, e
	}
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot open key file %s of %s: %v", k.Path, k.name(), errnoText(err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot stat key file %s", k.Path))
	}
	if !fi.Mode().IsRegular() {
		return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("key file %s of %s is not a regular file", k.Path, k.name())}).
			WithFix("remove it: %s", k.forgetFix())
	}
	if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
		return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("key file %s of %s belongs to uid %d, not to you", k.Path, k.name(), uid)}).
			WithFix("remove it: %s", k.forgetFix())
	}
	if !safefile.Private(fi) {
		return nil, (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("key file %s of %s is accessible by others (mode %04o)", k.Path, k.name(), fi.Mode().Perm())}).
			WithFix("chmod 600 %s", k.Path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot read key file %s of %s: %v", k.Path, k.name(), errnoText(err)))
	}
	kf, err := ParseKeyFile(data)
	if err != nil {
		return nil, k.corrupt(err)
	}
	return kf, nil
}

func (k Key) corrupt(err error) *helper.Error {
	return &helper.Error{
		Kind: helper.KindInternal,
		Msg:  fmt.Sprintf("key file %s of %s is unusable: %v", k.Path, k.name(), err),
		Fix:  k.forgetFix(),
		Err:  err,
	}
}

// Create makes a new passphrase-protected key file. It refuses an empty
// passphrase and an existing key file (which would orphan every secret
// sealed to it).
func (k Key) Create(pass string, opts KeyOptions) (*Identity, error) {
	pass = strings.TrimSpace(pass)
	if pass == "" {
		return nil, (&helper.Error{Kind: helper.KindUsage, Msg: "an empty passphrase is refused for " + k.name()}).
			WithFix("choose a passphrase; for an unencrypted store (robot accounts only) set plaintext = true in %s", k.name())
	}
	w, err := opts.workFactor()
	if err != nil {
		return nil, err
	}
	if err := k.refuseExisting(); err != nil {
		return nil, err
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot generate a key")
	}
	enc, err := encryptIdentity(x, pass, w)
	if err != nil {
		return nil, err
	}
	kf := &KeyFile{Format: KeyFileFormat, Version: KeyFileVersion, Recipient: x.Recipient().String(),
		Protection: Passphrase, Identity: enc, Created: opts.now()}
	if err := k.write(kf); err != nil {
		return nil, err
	}
	return &Identity{x: x, profile: k.Profile}, nil
}

// CreatePlaintext makes a new key file whose identity is stored
// unencrypted, and warns through opts.Warn.
func (k Key) CreatePlaintext(opts KeyOptions) (*Identity, error) {
	if err := k.refuseExisting(); err != nil {
		return nil, err
	}
	x, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot generate a key")
	}
	kf := &KeyFile{Format: KeyFileFormat, Version: KeyFileVersion, Recipient: x.Recipient().String(),
		Protection: Plaintext, Identity: x.String(), Created: opts.now()}
	if err := k.write(kf); err != nil {
		return nil, err
	}
	opts.warn(k.plaintextWarning())
	return &Identity{x: x, profile: k.Profile}, nil
}

func (k Key) plaintextWarning() string {
	return fmt.Sprintf("warning: %s stores its refresh token and client secret UNENCRYPTED (plaintext = true); "+
		"anyone who can read %s (root, backups, a copied disk) can use them", k.name(), filepath.Dir(k.Path))
}

func (k Key) refuseExisting() error {
	ok, err := k.Exists()
	if err != nil {
		return err
	}
	if ok {
		return (&helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("%s already has a key file (%s)", k.name(), k.Path)}).
			WithFix("to change its passphrase: tokenhelper passwd%s; to start over: %s", k.flag(), k.forgetFix())
	}
	return nil
}

// Unlock decrypts the identity with pass: one scrypt. A wrong passphrase
// is KindDenied; nothing is written in any case.
func (k Key) Unlock(pass string, opts KeyOptions) (*Identity, error) {
	kf, err := k.Load()
	if err != nil {
		return nil, err
	}
	return k.unlock(kf, pass, opts)
}

func (k Key) unlock(kf *KeyFile, pass string, opts KeyOptions) (*Identity, error) {
	pass = strings.TrimSpace(pass)
	if kf.Protection == Plaintext {
		return k.identityFromText(kf, kf.Identity)
	}
	if pass == "" {
		return nil, k.wrongPassphrase(nil)
	}
	if w, err := scryptWorkFactor(kf.Identity); err != nil {
		return nil, k.corrupt(err)
	} else if w > opts.maxWorkFactor() {
		return nil, k.corrupt(fmt.Errorf("scrypt work factor %d is above the accepted maximum %d", w, opts.maxWorkFactor()))
	}
	sid, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, k.wrongPassphrase(err)
	}
	sid.SetMaxWorkFactor(opts.maxWorkFactor())
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(kf.Identity)), sid)
	if err != nil {
		if errors.Is(err, age.ErrIncorrectIdentity) {
			return nil, k.wrongPassphrase(err)
		}
		return nil, k.corrupt(errors.New("cannot decrypt its identity"))
	}
	text, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return nil, k.corrupt(errors.New("its encrypted identity is damaged"))
	}
	return k.identityFromText(kf, string(text))
}

// identityFromText parses an identity and checks it belongs to kf.
func (k Key) identityFromText(kf *KeyFile, text string) (*Identity, error) {
	x, err := age.ParseX25519Identity(strings.TrimSpace(text))
	if err != nil {
		return nil, k.corrupt(errors.New("its identity is malformed"))
	}
	if x.Recipient().String() != kf.Recipient {
		return nil, k.corrupt(errors.New("its identity does not match its recipient"))
	}
	return &Identity{x: x, profile: k.Profile}, nil
}

func (k Key) wrongPassphrase(err error) *helper.Error {
	return &helper.Error{
		Kind: helper.KindDenied,
		Msg:  "wrong passphrase for " + k.name(),
		Fix:  "try again; if forgotten: " + k.forgetFix(),
		Err:  err,
	}
}

// SetPassphrase re-encrypts the identity under newPass (atomically; sealed
// secrets stay valid). id must be this key's identity, from an unlock or
// from the unlock cache; it also turns a plaintext key into a protected one.
func (k Key) SetPassphrase(id *Identity, newPass string, opts KeyOptions) error {
	newPass = strings.TrimSpace(newPass)
	if newPass == "" {
		return (&helper.Error{Kind: helper.KindUsage, Msg: "an empty passphrase is refused for " + k.name()}).
			WithFix("choose a passphrase; for an unencrypted store (robot accounts only) set plaintext = true in %s", k.name())
	}
	w, err := opts.workFactor()
	if err != nil {
		return err
	}
	kf, err := k.Load()
	if err != nil {
		return err
	}
	if err := k.owns(kf, id); err != nil {
		return err
	}
	enc, err := encryptIdentity(id.x, newPass, w)
	if err != nil {
		return err
	}
	kf.Protection, kf.Identity = Passphrase, enc
	return k.write(kf)
}

// SetPlaintext stores the identity unencrypted (atomically) and warns
// through opts.Warn.
func (k Key) SetPlaintext(id *Identity, opts KeyOptions) error {
	kf, err := k.Load()
	if err != nil {
		return err
	}
	if err := k.owns(kf, id); err != nil {
		return err
	}
	kf.Protection, kf.Identity = Plaintext, id.x.String()
	if err := k.write(kf); err != nil {
		return err
	}
	opts.warn(k.plaintextWarning())
	return nil
}

func (k Key) owns(kf *KeyFile, id *Identity) error {
	if id == nil || id.x == nil || id.x.Recipient().String() != kf.Recipient {
		return helper.Errorf(helper.KindInternal, "the identity given does not belong to the key file %s of %s", k.Path, k.name())
	}
	return nil
}

// Seal encrypts plaintext to the key's recipient. It needs no passphrase.
// The result is a binary age file; [Identity.Open] reads it (and its
// armored form).
func (k Key) Seal(plaintext []byte) ([]byte, error) {
	kf, err := k.Load()
	if err != nil {
		return nil, err
	}
	rcpt, err := age.ParseX25519Recipient(kf.Recipient)
	if err != nil { // ParseKeyFile checked it
		return nil, k.corrupt(errors.New("invalid recipient"))
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpt)
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encrypt a secret for "+k.name())
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encrypt a secret for "+k.name())
	}
	if err := w.Close(); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encrypt a secret for "+k.name())
	}
	return buf.Bytes(), nil
}

// Forget removes the key's unlock-cache entry (cache may be nil) and the
// key file, without needing the passphrase. A missing file is not an
// error. Secrets sealed to the key become unreadable; deleting them is the
// caller's job.
func (k Key) Forget(cache Cache) error {
	if cache != nil {
		// An unavailable cache holds nothing to forget.
		if err := cache.Delete(k.CacheID()); err != nil && !errors.Is(err, ErrCacheUnavailable) {
			return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot remove the unlock of %s from the kernel keyring: %v", k.name(), err))
		}
	}
	err := os.Remove(k.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot remove key file %s of %s: %v", k.Path, k.name(), errnoText(err)))
	}
	return nil
}

func (k Key) write(kf *KeyFile) error {
	data, err := kf.Marshal()
	if err != nil {
		return helper.Wrap(helper.KindInternal, err, "cannot encode key file")
	}
	if err := safefile.MkdirPrivate(filepath.Dir(k.Path)); err != nil {
		return k.writeErr(err)
	}
	if err := safefile.WriteFile(k.Path, data, 0o600); err != nil {
		return k.writeErr(err)
	}
	return nil
}

func (k Key) writeErr(err error) *helper.Error {
	kind := helper.KindInternal
	if errors.Is(err, safefile.ErrForeignOwner) || errors.Is(err, safefile.ErrSymlink) || errors.Is(err, safefile.ErrNotRegular) {
		kind = helper.KindUnsafe
	}
	// safefile's errors name paths and causes, never contents.
	return helper.Wrap(kind, err, fmt.Sprintf("cannot write key file of %s: %v", k.name(), err))
}

func encryptIdentity(x *age.X25519Identity, pass string, workFactor int) (string, error) {
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot encrypt the key")
	}
	r.SetWorkFactor(workFactor)
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot encrypt the key")
	}
	if _, err := io.WriteString(w, x.String()+"\n"); err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot encrypt the key")
	}
	if err := w.Close(); err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot encrypt the key")
	}
	if err := aw.Close(); err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot encrypt the key")
	}
	return buf.String(), nil
}

// errnoText returns the syscall reason of a filesystem error without the
// path (which the caller's message already names).
func errnoText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

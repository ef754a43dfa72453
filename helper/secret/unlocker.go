package secret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// MaxAttempts is how often a person is asked for a passphrase before the
// unlock fails.
const MaxAttempts = 3

// Unlocker turns a key file into an [Identity]: from a passphrase source,
// the unlock cache, or a prompt, in that order. The zero value works (no
// sources, no cache, no prompt: only plaintext keys open).
type Unlocker struct {
	// Sources are tried first.
	Sources Sources
	// Cache remembers unlocks (prompted, or from a passphrase source);
	// nil: none.
	Cache Cache
	// UnlockFor is how long an unlock is remembered: 0 means
	// DefaultUnlockFor, a negative value disables the cache (neither read
	// nor written).
	UnlockFor time.Duration
	// Prompter asks a person; nil, or Terminal() false: never prompt.
	Prompter Prompter
	// Options tune scrypt, carry the plaintext warning callback and the
	// clock that dates cache entries.
	Options KeyOptions
	// Debugf receives debug-level notes (cache unavailable and why, cache
	// hits); nil drops them. They never contain secrets.
	Debugf func(format string, args ...any)
}

func (u *Unlocker) debugf(format string, args ...any) {
	if u.Debugf != nil {
		u.Debugf(format, args...)
	}
}

func (u *Unlocker) ttl() time.Duration {
	switch {
	case u.UnlockFor < 0:
		return 0
	case u.UnlockFor == 0:
		return DefaultUnlockFor
	}
	return u.UnlockFor
}

func (u *Unlocker) cache() Cache {
	if u.Cache == nil || u.ttl() == 0 {
		return nil
	}
	return u.Cache
}

func (u *Unlocker) canPrompt() bool { return u.Prompter != nil && u.Prompter.Terminal() }

// Open returns the key's identity. Plaintext keys open directly. Otherwise
// the passphrase sources are tried, then the unlock cache, then (on a
// terminal) up to MaxAttempts prompts. A passphrase from a source is
// checked against the key file with scrypt unless the unlock cache holds
// an unlock that already checked this source against this key file (see
// the package documentation); a checked unlock, from a source or a prompt,
// is cached. It never writes the key file.
//
// Errors: KindLoginNeeded when the key file is missing or a passphrase is
// needed and nobody can be asked (the message lists the options);
// KindDenied for a wrong passphrase; KindUnsafe / KindConfig /
// KindUnavailable for a bad passphrase source; KindInternal for a corrupt
// key file.
func (u *Unlocker) Open(ctx context.Context, k Key) (*Identity, error) {
	kf, err := k.Load()
	if err != nil {
		return nil, err
	}
	if kf.Protection == Plaintext {
		u.debugf("%s: key file is in plaintext mode", k.name())
		return k.unlock(kf, "", u.Options)
	}
	pass, src, err := u.Sources.passphrase(ctx, k.Profile)
	if err != nil {
		return nil, err
	}
	if pass != "" {
		return u.openWithSource(k, kf, pass, src)
	}
	if c := u.fromCache(k, kf); c != nil {
		u.debugf("%s: unlocked from the unlock cache", k.name())
		return c.id, nil
	}
	if !u.canPrompt() {
		return nil, u.locked(k)
	}
	return u.prompt(ctx, k, kf)
}

// openWithSource opens kf with a passphrase from src: from the unlock
// cache when an entry there vouches for src and this key file state,
// otherwise by scrypt, remembering the check.
func (u *Unlocker) openWithSource(k Key, kf *KeyFile, pass string, src source) (*Identity, error) {
	ks := keyState(kf)
	c := u.fromCache(k, kf)
	if c != nil && c.entry.vouches(ks, src.print) {
		u.debugf("%s: unlocked from the unlock cache; the passphrase from %s was checked against this key file earlier in this unlock, so it is not checked again (scrypt) before the unlock ends at %s",
			k.name(), src.from, c.expires.Local().Format(time.DateTime))
		return c.id, nil
	}
	switch {
	case c == nil:
	case c.entry.keyState != ks:
		u.debugf("%s: the unlock cache entry predates the key file's current passphrase protection: checking the passphrase from %s", k.name(), src.from)
	default:
		u.debugf("%s: the unlock cache entry has not checked %s yet: checking its passphrase", k.name(), src.from)
	}
	id, err := k.unlock(kf, pass, u.Options)
	if helper.IsKind(err, helper.KindDenied) {
		return nil, &helper.Error{
			Kind: helper.KindDenied,
			Msg:  fmt.Sprintf("wrong passphrase for %s (from %s)", k.name(), src.from),
			Fix:  fmt.Sprintf("correct %s; if the passphrase is forgotten: %s", src.from, k.forgetFix()),
			Err:  err,
		}
	}
	if err != nil {
		return nil, err
	}
	if c != nil && c.entry.keyState == ks {
		// The same unlock, now also vouching for src: its timeout still
		// counts from when it was made.
		u.store(k, c.entry.with(src.print), c.expires)
		return id, nil
	}
	u.remember(k, kf, id, src.print)
	return id, nil
}

// cached is a usable unlock-cache entry with its identity.
type cached struct {
	id      *Identity
	entry   cacheEntry
	expires time.Time
}

// fromCache returns the cached unlock of k if it is there and belongs to
// kf; a stale entry (the key was replaced) is removed.
func (u *Unlocker) fromCache(k Key, kf *KeyFile) *cached {
	c := u.cache()
	if c == nil {
		return nil
	}
	secret, exp, err := c.Get(k.CacheID())
	defer clear(secret)
	switch {
	case errors.Is(err, ErrNotCached):
		u.debugf("%s: not unlocked (no unlock cache entry)", k.name())
		return nil
	case err != nil:
		u.debugf("%s: unlock cache not used: %v", k.name(), err)
		return nil
	}
	e := parseCacheEntry(secret)
	id, err := k.identityFromText(kf, e.identity)
	if err != nil {
		u.debugf("%s: unlock cache entry does not match the key file; removing it", k.name())
		_ = c.Delete(k.CacheID())
		return nil
	}
	return &cached{id: id, entry: e, expires: exp}
}

// remember caches a checked unlock of kf for the full unlock period;
// srcPrint names the passphrase source that was checked ("" for a
// prompt).
func (u *Unlocker) remember(k Key, kf *KeyFile, id *Identity, srcPrint string) {
	if u.cache() == nil {
		return
	}
	e := cacheEntry{identity: id.x.String(), keyState: keyState(kf)}.with(srcPrint)
	u.store(k, e, u.Options.now().Add(u.ttl()))
}

// rememberNew caches id after this process wrote k's key file (its
// passphrase was just set, so it is checked).
func (u *Unlocker) rememberNew(k Key, id *Identity, srcPrint string) {
	if u.cache() == nil {
		return
	}
	kf, err := k.Load()
	if err != nil {
		u.debugf("%s: unlock not remembered: %v", k.name(), err)
		return
	}
	u.remember(k, kf, id, srcPrint)
}

// store puts e into the cache until expires, at most the unlock period
// from now; an end already past (the entry expired meanwhile) means a
// full period, since every caller has just checked a passphrase.
func (u *Unlocker) store(k Key, e cacheEntry, expires time.Time) {
	c := u.cache()
	if c == nil {
		return
	}
	ttl := min(expires.Sub(u.Options.now()), u.ttl())
	if ttl <= 0 {
		ttl = u.ttl()
	}
	secret := e.marshal()
	defer clear(secret)
	if err := c.Put(k.CacheID(), secret, ttl); err != nil {
		u.debugf("%s: unlock not remembered: %v", k.name(), err)
		return
	}
	u.debugf("%s: unlocked for %s", k.name(), ttl.Round(time.Second))
}

func (u *Unlocker) prompt(ctx context.Context, k Key, kf *KeyFile) (*Identity, error) {
	var last error
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, helper.Wrap(helper.KindUsage, err, "passphrase prompt interrupted")
		}
		q := fmt.Sprintf("Passphrase for %s: ", k.name())
		if attempt > 1 {
			q = fmt.Sprintf("Wrong passphrase, try again (%d of %d). Passphrase for %s: ", attempt, MaxAttempts, k.name())
		}
		pass, err := u.Prompter.Secret(q)
		if err != nil {
			return nil, err
		}
		id, err := k.unlock(kf, pass, u.Options)
		if err == nil {
			u.remember(k, kf, id, "")
			return id, nil
		}
		if !helper.IsKind(err, helper.KindDenied) {
			return nil, err
		}
		last = err
	}
	return nil, last
}

// locked is the error for "a passphrase is needed and nobody can be asked".
func (u *Unlocker) locked(k Key) *helper.Error {
	fix := fmt.Sprintf("set passphrase_env, passphrase_file or passphrase_cmd in %s, or run on a terminal: tokenhelper login%s", k.name(), k.flag())
	if u.cache() != nil {
		fix += fmt.Sprintf(" (it unlocks %s on this node for %s)", k.name(), u.ttl())
	}
	return &helper.Error{
		Kind: helper.KindLoginNeeded,
		Msg:  fmt.Sprintf("%s is locked: its passphrase is needed and there is no terminal to ask", k.name()),
		Fix:  fix,
	}
}

// Create makes the key file for a first login. With plaintext it stores
// the identity unencrypted (and warns through Options.Warn). Otherwise the
// passphrase comes from the sources (used as is: it is already written
// down) or from a prompt, entered twice; an empty one is refused. Either
// way the new key is unlocked in the cache.
func (u *Unlocker) Create(ctx context.Context, k Key, plaintext bool) (*Identity, error) {
	if plaintext {
		return k.CreatePlaintext(u.Options)
	}
	if err := k.refuseExisting(); err != nil {
		return nil, err
	}
	pass, src, err := u.Sources.passphrase(ctx, k.Profile)
	if err != nil {
		return nil, err
	}
	if pass != "" {
		id, err := k.Create(pass, u.Options)
		if err != nil {
			return nil, err
		}
		u.rememberNew(k, id, src.print)
		return id, nil
	}
	if !u.canPrompt() {
		return nil, &helper.Error{
			Kind: helper.KindLoginNeeded,
			Msg:  fmt.Sprintf("%s needs a passphrase to protect its secrets and there is no terminal to ask", k.name()),
			Fix: fmt.Sprintf("run on a terminal: tokenhelper login%s; or set passphrase_env, passphrase_file or passphrase_cmd in %s; "+
				"or, for robot accounts only, plaintext = true", k.flag(), k.name()),
		}
	}
	pass, err = u.newPassphrase(ctx, k)
	if err != nil {
		return nil, err
	}
	id, err := k.Create(pass, u.Options)
	if err != nil {
		return nil, err
	}
	u.rememberNew(k, id, "")
	return id, nil
}

// newPassphrase asks twice, until both entries match and are not empty.
func (u *Unlocker) newPassphrase(ctx context.Context, k Key) (string, error) {
	note := ""
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return "", helper.Wrap(helper.KindUsage, err, "passphrase prompt interrupted")
		}
		p1, err := u.Prompter.Secret(note + fmt.Sprintf("New passphrase for %s: ", k.name()))
		if err != nil {
			return "", err
		}
		if p1 = strings.TrimSpace(p1); p1 == "" {
			note = "An empty passphrase is refused. "
			continue
		}
		p2, err := u.Prompter.Secret("Repeat the passphrase: ")
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(p2) != p1 {
			note = "The passphrases differ. "
			continue
		}
		return p1, nil
	}
	return "", (&helper.Error{Kind: helper.KindUsage, Msg: "no passphrase set for " + k.name()}).
		WithFix("run the command again and enter the same, non-empty passphrase twice")
}

// ChangePassphrase re-encrypts the key's identity under a new passphrase,
// asked twice at the prompt (it needs a terminal). The current identity
// comes from Open: a passphrase source, the unlock cache (so a forgotten
// passphrase can be replaced while the key is still unlocked) or a prompt.
// Sealed secrets stay valid. It also protects a plaintext key.
func (u *Unlocker) ChangePassphrase(ctx context.Context, k Key) error {
	if !u.canPrompt() {
		return (&helper.Error{Kind: helper.KindUsage, Msg: "changing the passphrase of " + k.name() + " needs a terminal"}).
			WithFix("run it on a terminal")
	}
	id, err := u.Open(ctx, k)
	if err != nil {
		return err
	}
	pass, err := u.newPassphrase(ctx, k)
	if err != nil {
		return err
	}
	if err := k.SetPassphrase(id, pass, u.Options); err != nil {
		return err
	}
	// The entry now vouches for the new protection and no source: a
	// source still giving the old passphrase is refused at its next use.
	u.rememberNew(k, id, "")
	return nil
}

// Lock removes the key's unlock from the cache. Nothing cached, or no
// usable cache, is not an error.
func (u *Unlocker) Lock(k Key) error {
	if u.Cache == nil {
		return nil
	}
	if err := u.Cache.Delete(k.CacheID()); err != nil && !errors.Is(err, ErrCacheUnavailable) {
		return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot lock %s: %v", k.name(), err))
	}
	return nil
}

// Forget is k.Forget(u.Cache): removes the unlock and the key file without
// the passphrase.
func (u *Unlocker) Forget(k Key) error { return k.Forget(u.Cache) }

// UnlockedUntil reports until when the key is unlocked in the cache
// (without checking that the entry matches the key file). ok is false when
// it is not, or when there is no usable cache.
func (u *Unlocker) UnlockedUntil(k Key) (until time.Time, ok bool) {
	c := u.cache()
	if c == nil {
		return time.Time{}, false
	}
	secret, exp, err := c.Get(k.CacheID())
	clear(secret)
	if err != nil {
		return time.Time{}, false
	}
	return exp, true
}

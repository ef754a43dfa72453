// Package cache is the access-token cache every tokenhelper backend sits
// behind: one entry per (profile, scopes, audiences), so that N processes
// asking for the same token at once cause one acquisition at the provider.
//
// It implements the token-cache part of the tokenhelper foundation (issue
// 2, item 6) in the manner of kubelogin's token cache
// (pkg/tokencache/repository): a private directory (0700) of JSON entry
// files (0600) replaced atomically (temp file, fsync, rename: see
// helper/safefile), and a flock(2) lock per entry held across
// check → acquire → persist. Readers do not lock: a rename makes an entry
// appear whole or not at all, so the warm path is one open and one read.
//
// Files in Dir, for an entry key <p>-<h> where <p> is the profile name
// reduced to [A-Za-z0-9._-] and <h> the first 16 hex digits of
// sha256(profile NUL scopes NUL audiences) over the normalized request:
//
//	<p>-<h>.json          the entry (FormatVersion, helper.Token fields, obtained_at, key)
//	<p>-<h>.lock          its lock (empty)
//	<p>-<h2>.profile.lock the per-profile lock of LockProfile (empty)
//
// A lock held by a process that dies (even by SIGKILL) is released by the
// kernel, so there is never a stale lock to remove by hand. An entry that
// cannot be used — bad JSON, truncated, wrong version, oversized, not ours,
// not private — is a cache miss, and is overwritten by the next
// acquisition.
//
// Lock order, to avoid deadlock: an entry lock (held by Get around
// acquire, and by Put, Delete, DeleteProfile), then the profile lock
// (LockProfile, taken by backends inside acquire). Never the reverse:
// while holding a profile lock, do not call Get, Put, Delete or
// DeleteProfile. flock(2) locks belong to an open file, so a second
// attempt by the same process on a lock it holds waits like anyone else
// (and fails after the timeout): acquire must not call back into the cache
// for the same request.
package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// SourceCache is the Token.Source of a token served from the cache.
const SourceCache = "cache"

// DefaultUnknownExpiryTTL is how long a token whose expiry is unknown is
// served from the cache when Cache.UnknownExpiryTTL is zero.
const DefaultUnknownExpiryTTL = time.Minute

// Cache is a token cache in one directory. The zero value is not usable:
// set Dir. A Cache holds no open files or memory state, so it is safe for
// concurrent use and cheap to copy.
type Cache struct {
	// Dir is the cache directory, an absolute path, created with mode
	// 0700 on first write (typically $XDG_CACHE_HOME/tokenhelper/tokens).
	Dir string
	// Now is the clock used for token validity and obtained_at; nil
	// means time.Now. (Lock waits use real timers.)
	Now func() time.Time
	// LockTimeout bounds the wait for an entry lock held by another
	// caller; zero means DefaultLockTimeout. A sooner ctx deadline wins.
	LockTimeout time.Duration
	// UnknownExpiryTTL is how long a token without a known expiry is
	// served from the cache after it was obtained; zero means
	// DefaultUnknownExpiryTTL, negative means such tokens are never
	// served from the cache (every Get acquires).
	UnknownExpiryTTL time.Duration
	// Log, if set, receives diagnostics for -v output: corrupt entries
	// skipped, entries that could not be written. Messages never contain
	// token material.
	Log func(format string, args ...any)

	// onLockWait, if set, is called when an entry lock is found busy
	// (tests use it to tell when callers are queued on a lock).
	onLockWait func()
}

// Entry describes one cached token, for `tokenhelper status`.
type Entry struct {
	// Path is the entry file.
	Path string
	// Request is the normalized key the entry answers: Profile, Scopes
	// and Audiences (other fields zero).
	Request helper.Request
	// Token is the cached token; its Source is the backend that produced
	// it. Never print Token.AccessToken; use helper.Fingerprint.
	Token helper.Token
	// ObtainedAt is when the token was stored.
	ObtainedAt time.Time
}

// Get returns a token for req, from the cache when one there is valid for
// more than req.MinValid (and !req.Force), else from acquire, whose result
// it stores before returning.
//
// Across processes, acquire runs under the entry's lock, and a caller that
// waited for the lock first re-reads the entry: if another caller stored a
// token valid beyond MinValid meanwhile, it is returned without calling
// acquire — even with req.Force, when that token was stored after this
// call began, so N callers forcing at once still cause one acquisition.
//
// Errors: acquire's errors are returned unchanged (nothing is stored). A
// token from acquire that is not valid beyond MinValid even right away is
// a KindNoToken error (stored if still valid at all, for callers content
// with less). A lock that stays busy past LockTimeout or ctx's deadline
// is a KindUnavailable error naming the lock file. Failing to store a new
// token does not fail Get: the token is returned and Log says why.
// acquire must not call Get, Put or Delete for the same request (see the
// lock order in the package documentation).
func (c *Cache) Get(ctx context.Context, req helper.Request, acquire func(ctx context.Context) (*helper.Token, error)) (*helper.Token, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	req = req.Normalized()
	k := keyOf(req)
	base := k.base()
	path := filepath.Join(c.Dir, base+".json")

	before, raw0 := c.read(path, k)
	if !req.Force && c.fresh(before, req.MinValid) {
		return served(before), nil
	}

	unlock, err := c.lock(ctx, base)
	if err != nil {
		return nil, err
	}
	defer unlock()

	after, raw1 := c.read(path, k)
	if c.fresh(after, req.MinValid) && (!req.Force || !bytes.Equal(raw0, raw1)) {
		return served(after), nil
	}

	tok, err := acquire(ctx)
	if err != nil {
		return nil, err
	}
	t, err := checkToken(tok)
	if err != nil {
		return nil, err
	}
	if t.Profile == "" {
		t.Profile = req.Profile
	}
	now := c.now()
	if t.Expiry.IsZero() || t.Expiry.After(now) {
		if err := c.write(base, &entry{key: k, token: *t, obtainedAt: now}); err != nil {
			c.logf("token cache: could not store the new token in %s: %v", path, err)
		}
	}
	if !t.ValidBeyond(now, req.MinValid) {
		return nil, tooShort(t, now, req)
	}
	return t, nil
}

// Put stores tok as the entry for req (its Profile, Scopes, Audiences),
// replacing any entry there, under the entry's lock. obtained_at is Now.
func (c *Cache) Put(ctx context.Context, req helper.Request, tok *helper.Token) error {
	if err := c.check(); err != nil {
		return err
	}
	t, err := checkToken(tok)
	if err != nil {
		return err
	}
	k := keyOf(req)
	if t.Profile == "" {
		t.Profile = k.profile
	}
	unlock, err := c.lock(ctx, k.base())
	if err != nil {
		return err
	}
	defer unlock()
	return c.write(k.base(), &entry{key: k, token: *t, obtainedAt: c.now()})
}

// Delete removes the entry for req (its Profile, Scopes, Audiences), as
// `git credential erase` asks. It waits for an acquisition in progress for
// that entry, so the entry removed is the latest. A missing entry is not
// an error.
func (c *Cache) Delete(ctx context.Context, req helper.Request) error {
	if err := c.check(); err != nil {
		return err
	}
	base := keyOf(req).base()
	if _, err := os.Lstat(filepath.Join(c.Dir, base+".json")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_, err := c.remove(ctx, base, nil)
	return err
}

// DeleteProfile removes every entry of profile (logout) and reports how
// many it removed. Corrupt entries whose file name carries the profile's
// prefix are removed too. Do not call it while holding LockProfile for the
// profile (lock order: see LockProfile).
func (c *Cache) DeleteProfile(ctx context.Context, profile string) (int, error) {
	names, err := c.names()
	if err != nil {
		return 0, err
	}
	prefix := sanitizeProfile(profile) + "-"
	n := 0
	for _, base := range names {
		if !strings.HasPrefix(base, prefix) || !isEntryBase(base[len(prefix):]) {
			continue
		}
		removed, err := c.remove(ctx, base, func(e *entry) bool {
			return e == nil || e.key.profile == profile
		})
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// List returns the usable entries in the cache, expired ones included,
// sorted by profile, scopes, audiences. Unusable files are skipped. A
// missing directory is an empty cache.
func (c *Cache) List() ([]Entry, error) {
	names, err := c.names()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, base := range names {
		path := filepath.Join(c.Dir, base+".json")
		data, err := readPrivate(path)
		if err != nil {
			continue
		}
		e, err := decodeEntry(data)
		if err != nil || e.key.base() != base {
			continue
		}
		out = append(out, Entry{
			Path:       path,
			Request:    helper.Request{Profile: e.key.profile, Scopes: e.key.scopes, Audiences: e.key.audiences},
			Token:      e.token,
			ObtainedAt: e.obtainedAt,
		})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := strings.Compare(a.Request.Profile, b.Request.Profile); c != 0 {
			return c
		}
		if c := slices.Compare(a.Request.Scopes, b.Request.Scopes); c != 0 {
			return c
		}
		return slices.Compare(a.Request.Audiences, b.Request.Audiences)
	})
	return out, nil
}

// names returns the bases of the *.json files in Dir.
func (c *Cache) names() ([]string, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fsError(err, "cannot read the token cache directory "+c.Dir, c.Dir)
	}
	var out []string
	for _, de := range ents {
		if base, ok := strings.CutSuffix(de.Name(), ".json"); ok && !strings.HasPrefix(base, ".") {
			out = append(out, base)
		}
	}
	return out, nil
}

// isEntryBase reports whether s is the hash part of an entry base.
func isEntryBase(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// check refuses a Cache without an absolute directory (a relative one
// would put tokens wherever the working directory happens to be).
func (c *Cache) check() error {
	return checkDir(c.Dir)
}

func checkDir(dir string) error {
	if dir == "" {
		return helper.Errorf(helper.KindInternal, "token cache directory not set")
	}
	if !filepath.IsAbs(dir) {
		return helper.Errorf(helper.KindConfig, "token cache directory %q is not an absolute path", dir).
			WithFix("use an absolute path (if it comes from XDG_CACHE_HOME, make that absolute or unset it)")
	}
	return nil
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// lock creates Dir if needed and takes the lock of the entry base.
func (c *Cache) lock(ctx context.Context, base string) (func(), error) {
	if err := mkdirPrivate(c.Dir); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(c.Dir, base+".lock"), c.LockTimeout, c.onLockWait)
}

// read returns the usable entry at path for k (nil on a miss) and the raw
// bytes read (nil when there was no file).
func (c *Cache) read(path string, k key) (*entry, []byte) {
	data, err := readPrivate(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.logf("token cache: ignoring %s: %v", path, err)
		}
		return nil, data
	}
	e, err := decodeEntry(data)
	if err != nil {
		c.logf("token cache: ignoring %s: %v", path, err)
		return nil, data
	}
	if !e.key.equal(k) {
		c.logf("token cache: ignoring %s: written for another request", path)
		return nil, data
	}
	return e, data
}

// fresh reports whether e may be served for a request with minValid.
func (c *Cache) fresh(e *entry, minValid time.Duration) bool {
	if e == nil {
		return false
	}
	now := c.now()
	if e.token.Expiry.IsZero() {
		ttl := c.UnknownExpiryTTL
		if ttl == 0 {
			ttl = DefaultUnknownExpiryTTL
		}
		age := now.Sub(e.obtainedAt)
		// An entry from the future (a clock set back) is not trusted
		// beyond a little skew.
		return ttl > 0 && age < ttl && age > -time.Minute
	}
	return e.token.ValidBeyond(now, minValid)
}

// served returns a copy of e's token marked as coming from the cache.
func served(e *entry) *helper.Token {
	t := e.token
	t.Scopes = slices.Clone(t.Scopes)
	t.Audiences = slices.Clone(t.Audiences)
	t.Source = SourceCache
	return &t
}

// checkToken validates a token from a backend and returns a private copy.
func checkToken(tok *helper.Token) (*helper.Token, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, helper.Errorf(helper.KindInternal, "the backend returned no access token")
	}
	if !helper.IsB64Token(tok.AccessToken) {
		return nil, helper.Errorf(helper.KindInvalidToken,
			"the backend returned a malformed access token (%s): not RFC 6750 b64token syntax", helper.Fingerprint(tok.AccessToken))
	}
	t := *tok
	t.Scopes = slices.Clone(t.Scopes)
	t.Audiences = slices.Clone(t.Audiences)
	return &t, nil
}

// tooShort is the error for a fresh token that does not satisfy MinValid.
func tooShort(t *helper.Token, now time.Time, req helper.Request) *helper.Error {
	left := t.Expiry.Sub(now).Round(time.Second)
	what := fmt.Sprintf("valid for only %s", left)
	if left <= 0 {
		what = fmt.Sprintf("that expired %s ago", -left)
	}
	e := helper.Errorf(helper.KindNoToken,
		"the backend returned a token %s, less than the minimum validity %s", what, req.MinValid)
	fix := "ask for less with --min-valid (or min_valid in the profile)"
	if left > 0 {
		fix = fmt.Sprintf("ask for less with --min-valid %s (or min_valid in the profile)", max(left-time.Second, 0))
	}
	fix += ", or have the provider issue longer-lived access tokens"
	e.Fix = fix
	return e
}

// readPrivate reads an entry file that must be a regular file, ours, with
// no group or other permission bits, at most MaxEntrySize bytes. It
// returns the bytes read (when it read any) with any error.
func readPrivate(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, safefile.ErrNotRegular
	}
	if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
		return nil, safefile.ErrForeignOwner
	}
	if !safefile.Private(fi) {
		return nil, errors.New("readable by others")
	}
	if fi.Size() > MaxEntrySize {
		return nil, corrupt("larger than %d bytes", MaxEntrySize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxEntrySize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// write stores e as the entry base. The caller holds the entry lock, so
// any temporary file left for this entry is debris from a writer that was
// killed, and is removed. A file in the way that safefile refuses to
// replace (a symlink, another user's file, a directory) is removed first:
// Dir is ours and private, and it only holds a cache.
func (c *Cache) write(base string, e *entry) error {
	data, err := encodeEntry(e)
	if err != nil {
		return err
	}
	path := filepath.Join(c.Dir, base+".json")
	c.removeTemps(base)
	err = safefile.WriteFile(path, data, 0o600)
	if errors.Is(err, safefile.ErrSymlink) || errors.Is(err, safefile.ErrForeignOwner) || errors.Is(err, safefile.ErrNotRegular) {
		c.logf("token cache: replacing %s: %v", path, err)
		if rerr := os.Remove(path); rerr != nil {
			return helper.Wrap(helper.KindUnsafe, err, "cannot replace the cache entry "+path+": "+errnoText(err)).
				WithFix("remove it: rm -r %s", path)
		}
		err = safefile.WriteFile(path, data, 0o600)
	}
	if err != nil {
		return fsError(err, "cannot write the cache entry "+path, c.Dir)
	}
	return nil
}

// removeTemps removes temporary files of base left by killed writers
// (safefile names them ".<name>.tmp-<random>"). The caller holds the lock.
func (c *Cache) removeTemps(base string) {
	temps, _ := filepath.Glob(filepath.Join(c.Dir, "."+base+".json.tmp-*"))
	for _, t := range temps {
		os.Remove(t)
	}
}

// remove deletes the entry base (with its temporary files and lock file)
// under its lock, if there is one and match (when not nil) accepts it (the
// entry, or nil for an unusable file). It reports whether it removed one.
func (c *Cache) remove(ctx context.Context, base string, match func(*entry) bool) (bool, error) {
	unlock, err := c.lock(ctx, base)
	if err != nil {
		return false, err
	}
	defer unlock()
	path := filepath.Join(c.Dir, base+".json")
	data, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if match != nil {
		var e *entry
		if err == nil {
			e, _ = decodeEntry(data)
		}
		if !match(e) {
			return false, nil
		}
	}
	c.removeTemps(base)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fsError(err, "cannot remove the cache entry "+path, c.Dir)
	}
	if err := syncDir(c.Dir); err != nil {
		return true, fsError(err, "cannot sync the token cache directory "+c.Dir, c.Dir)
	}
	// Unlinking a held lock file is safe: a waiter that then locks the
	// old file sees it is no longer at its path and starts again.
	os.Remove(filepath.Join(c.Dir, base+".lock"))
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

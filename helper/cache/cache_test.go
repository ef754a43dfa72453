package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

var t0 = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

// clock is a settable fake clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newCache(t testing.TB) (*Cache, *clock) {
	clk := &clock{t: t0}
	return &Cache{Dir: filepath.Join(t.TempDir(), "tokens"), Now: clk.Now}, clk
}

func tok(s string, exp time.Time) *helper.Token {
	return &helper.Token{AccessToken: s, Expiry: exp, Issuer: "https://iam.example.org/"}
}

// acquirer counts calls and returns a fixed result.
type acquirer struct {
	calls atomic.Int32
	tok   *helper.Token
	err   error
}

func (a *acquirer) acquire(ctx context.Context) (*helper.Token, error) {
	a.calls.Add(1)
	if a.tok == nil {
		return nil, a.err
	}
	t := *a.tok
	return &t, a.err
}

func entryPath(c *Cache, req helper.Request) string {
	return filepath.Join(c.Dir, keyOf(req).base()+".json")
}

// stored returns the token in the entry for req, or "" when there is no
// usable entry.
func stored(t *testing.T, c *Cache, req helper.Request) string {
	t.Helper()
	data, err := os.ReadFile(entryPath(c, req))
	if err != nil {
		return ""
	}
	e, err := decodeEntry(data)
	if err != nil {
		return ""
	}
	return e.token.AccessToken
}

func putAt(t *testing.T, c *Cache, clk *clock, at time.Time, req helper.Request, tk *helper.Token) {
	t.Helper()
	saved := clk.Now()
	clk.Set(at)
	defer clk.Set(saved)
	if err := c.Put(context.Background(), req, tk); err != nil {
		t.Fatal(err)
	}
}

func writeRaw(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func validEntryBytes(t *testing.T, req helper.Request, token string, exp time.Time) []byte {
	t.Helper()
	b, err := encodeEntry(&entry{key: keyOf(req), token: *tok(token, exp), obtainedAt: t0.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGet(t *testing.T) {
	req := helper.Request{Profile: "wlcg", Scopes: []string{"storage.read:/", "openid"}, MinValid: 5 * time.Minute}
	other := helper.Request{Profile: "wlcg", Scopes: []string{"compute.read"}}
	fresh := tok("NEW", t0.Add(time.Hour))
	type setup func(t *testing.T, c *Cache, clk *clock)
	put := func(token string, exp time.Time) setup {
		return func(t *testing.T, c *Cache, clk *clock) {
			putAt(t, c, clk, t0.Add(-time.Minute), req, tok(token, exp))
		}
	}
	raw := func(data []byte, mode os.FileMode) setup {
		return func(t *testing.T, c *Cache, clk *clock) { writeRaw(t, entryPath(c, req), data, mode) }
	}
	tests := []struct {
		name        string
		setup       setup
		req         helper.Request
		acq         *acquirer
		ttl         time.Duration
		wantToken   string
		wantSource  string
		wantCalls   int32
		wantKind    helper.Kind
		wantErrText string
		wantStored  string
	}{
		{name: "empty cache acquires and stores", acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantSource: "", wantCalls: 1, wantStored: "NEW"},
		{name: "valid entry is served", setup: put("OLD", t0.Add(time.Hour)), acq: &acquirer{tok: fresh},
			wantToken: "OLD", wantSource: SourceCache, wantStored: "OLD"},
		{name: "scopes in another order and spelling hit the same entry", setup: put("OLD", t0.Add(time.Hour)),
			req: helper.Request{Profile: "wlcg", Scopes: []string{"openid storage.read:/", "openid"}, MinValid: 5 * time.Minute},
			acq: &acquirer{tok: fresh}, wantToken: "OLD", wantSource: SourceCache, wantStored: "OLD"},
		{name: "expired entry is replaced", setup: put("OLD", t0.Add(-time.Second)), acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "entry expiring within min-valid is replaced", setup: put("OLD", t0.Add(4*time.Minute)), acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "entry expiring exactly at min-valid is replaced", setup: put("OLD", t0.Add(5*time.Minute)), acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "force replaces a valid entry", setup: put("OLD", t0.Add(time.Hour)),
			req: helper.Request{Profile: "wlcg", Scopes: req.Scopes, Force: true}, acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "other scopes are another entry", setup: put("OLD", t0.Add(time.Hour)), req: other, acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1},
		{name: "bad JSON is a miss and is overwritten", setup: raw([]byte("{not json"), 0o600), acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "empty file is a miss", setup: raw(nil, 0o600), acq: &acquirer{tok: fresh},
			wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "truncated entry is a miss", setup: func(t *testing.T, c *Cache, clk *clock) {
			b := validEntryBytes(t, req, "OLD", t0.Add(time.Hour))
			writeRaw(t, entryPath(c, req), b[:len(b)/2], 0o600)
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "wrong version is a miss", setup: func(t *testing.T, c *Cache, clk *clock) {
			b := validEntryBytes(t, req, "OLD", t0.Add(time.Hour))
			b = []byte(strings.Replace(string(b), `"version": 1`, `"version": 2`, 1))
			writeRaw(t, entryPath(c, req), b, 0o600)
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "oversized entry is a miss", setup: func(t *testing.T, c *Cache, clk *clock) {
			b := validEntryBytes(t, req, "OLD", t0.Add(time.Hour))
			b = []byte(strings.Replace(string(b), `"version": 1`, `"pad": "`+strings.Repeat("x", MaxEntrySize)+`", "version": 1`, 1))
			writeRaw(t, entryPath(c, req), b, 0o600)
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "entry written for another request is a miss", setup: func(t *testing.T, c *Cache, clk *clock) {
			writeRaw(t, entryPath(c, req), validEntryBytes(t, other, "OLD", t0.Add(time.Hour)), 0o600)
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "token with whitespace in the entry is a miss", setup: func(t *testing.T, c *Cache, clk *clock) {
			b := validEntryBytes(t, req, "OLD", t0.Add(time.Hour))
			writeRaw(t, entryPath(c, req), []byte(strings.Replace(string(b), `"OLD"`, `"OLD\n"`, 1)), 0o600)
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "group-readable entry is a miss and is rewritten 0600", setup: func(t *testing.T, c *Cache, clk *clock) {
			writeRaw(t, entryPath(c, req), validEntryBytes(t, req, "OLD", t0.Add(time.Hour)), 0o640)
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "symlink at the entry is a miss and is replaced", setup: func(t *testing.T, c *Cache, clk *clock) {
			target := filepath.Join(filepath.Dir(c.Dir), "elsewhere.json")
			writeRaw(t, target, validEntryBytes(t, req, "OLD", t0.Add(time.Hour)), 0o600)
			if err := os.MkdirAll(c.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, entryPath(c, req)); err != nil {
				t.Fatal(err)
			}
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "directory at the entry is a miss and is replaced", setup: func(t *testing.T, c *Cache, clk *clock) {
			if err := os.MkdirAll(entryPath(c, req), 0o700); err != nil {
				t.Fatal(err)
			}
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "unknown expiry is served while young", setup: func(t *testing.T, c *Cache, clk *clock) {
			putAt(t, c, clk, t0.Add(-59*time.Second), req, tok("OLD", time.Time{}))
		}, acq: &acquirer{tok: fresh},
			wantToken: "OLD", wantSource: SourceCache, wantStored: "OLD"},
		{name: "unknown expiry is replaced when old", setup: func(t *testing.T, c *Cache, clk *clock) {
			putAt(t, c, clk, t0.Add(-2*time.Minute), req, tok("OLD", time.Time{}))
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "unknown expiry with a longer TTL is served", ttl: time.Hour, setup: func(t *testing.T, c *Cache, clk *clock) {
			putAt(t, c, clk, t0.Add(-2*time.Minute), req, tok("OLD", time.Time{}))
		}, acq: &acquirer{tok: fresh}, wantToken: "OLD", wantSource: SourceCache, wantStored: "OLD"},
		{name: "unknown expiry with a negative TTL is never served", ttl: -1, setup: put("OLD", time.Time{}),
			acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "unknown expiry from the future is not trusted", setup: func(t *testing.T, c *Cache, clk *clock) {
			putAt(t, c, clk, t0.Add(24*time.Hour), req, tok("OLD", time.Time{}))
		}, acq: &acquirer{tok: fresh}, wantToken: "NEW", wantCalls: 1, wantStored: "NEW"},
		{name: "acquire error is returned and the old entry kept", setup: put("OLD", t0.Add(-time.Second)),
			acq:      &acquirer{err: helper.LoginNeeded("wlcg", "session expired")},
			wantKind: helper.KindLoginNeeded, wantCalls: 1, wantStored: "OLD"},
		{name: "token too short for min-valid is an error but stored", setup: put("OLD", t0.Add(-time.Second)),
			acq:      &acquirer{tok: tok("SHORT", t0.Add(30*time.Second))},
			wantKind: helper.KindNoToken, wantCalls: 1, wantStored: "SHORT",
			wantErrText: "the backend returned a token valid for only 30s, less than the minimum validity 5m0s: ask for less with --min-valid 29s"},
		{name: "expired token from the backend is an error and not stored", setup: put("OLD", t0.Add(-time.Second)),
			acq:      &acquirer{tok: tok("DEAD", t0.Add(-time.Minute))},
			wantKind: helper.KindNoToken, wantCalls: 1, wantStored: "OLD",
			wantErrText: "the backend returned a token that expired 1m0s ago"},
		{name: "no token from the backend", acq: &acquirer{tok: &helper.Token{}}, wantKind: helper.KindInternal, wantCalls: 1},
		{name: "nil token from the backend", acq: &acquirer{}, wantKind: helper.KindInternal, wantCalls: 1},
		{name: "malformed token from the backend", acq: &acquirer{tok: tok("two words", t0.Add(time.Hour))},
			wantKind: helper.KindInvalidToken, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t)
			c.UnknownExpiryTTL = tt.ttl
			if tt.setup != nil {
				tt.setup(t, c, clk)
			}
			r := req
			if tt.req.Profile != "" {
				r = tt.req
			}
			got, err := c.Get(context.Background(), r, tt.acq.acquire)
			if n := tt.acq.calls.Load(); n != tt.wantCalls {
				t.Errorf("acquire called %d times, want %d", n, tt.wantCalls)
			}
			if tt.wantKind != 0 {
				if !helper.IsKind(err, tt.wantKind) {
					t.Fatalf("err = %v (kind %v), want kind %v", err, helper.KindOf(err), tt.wantKind)
				}
				if tt.wantErrText != "" && !strings.Contains(err.Error(), tt.wantErrText) {
					t.Errorf("err = %q, want it to contain %q", err, tt.wantErrText)
				}
				for _, secret := range []string{"SHORT", "DEAD", "two words"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks the token", err)
					}
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got.AccessToken != tt.wantToken || got.Source != tt.wantSource {
					t.Errorf("got %q from %q, want %q from %q", got.AccessToken, got.Source, tt.wantToken, tt.wantSource)
				}
				if got.Profile != "wlcg" {
					t.Errorf("Profile = %q", got.Profile)
				}
			}
			if tt.wantStored != "" {
				if s := stored(t, c, r); s != tt.wantStored {
					t.Errorf("stored %q, want %q", s, tt.wantStored)
				}
				checkPrivate(t, c.Dir)
			}
		})
	}
}

// checkPrivate checks dir is 0700 and every file in it 0600, with no
// temporary files left.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", dir, fi.Mode().Perm())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a regular 0600 file", de.Name(), fi.Mode())
		}
		if strings.Contains(de.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", de.Name())
		}
	}
}

func TestGetReturnsCopies(t *testing.T) {
	c, clk := newCache(t)
	req := helper.Request{Profile: "p"}
	putAt(t, c, clk, t0, req, &helper.Token{AccessToken: "A", Expiry: t0.Add(time.Hour), Scopes: []string{"x"}})
	a, err := c.Get(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Scopes[0] = "changed"
	b, err := c.Get(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Scopes[0] != "x" {
		t.Errorf("a caller's change leaked into the next result: %v", b.Scopes)
	}
}

func TestFileNames(t *testing.T) {
	hexRE := regexp.MustCompile(`^[0-9a-f]{16}$`)
	tests := []struct {
		profile string
		prefix  string
	}{
		{"wlcg", "wlcg"},
		{"", "_"},
		{"lsst fr", "lsst_fr"},
		{"../../etc/passwd", "_._.._etc_passwd"},
		{".hidden", "_hidden"},
		{"a/b\x00c", "a_b_c"},
		{"é", "__"},
		{strings.Repeat("x", 100), strings.Repeat("x", maxProfileInName)},
	}
	for _, tt := range tests {
		base := keyOf(helper.Request{Profile: tt.profile}).base()
		prefix, hash, ok := cutLast(base, "-")
		if !ok || prefix != tt.prefix || !hexRE.MatchString(hash) {
			t.Errorf("profile %q: base %q, want %q-<16 hex>", tt.profile, base, tt.prefix)
		}
	}
	// Equal requests share a file; the hash covers profile, scopes, audiences.
	same := []helper.Request{
		{Profile: "p", Scopes: []string{"a", "b"}, Audiences: []string{"x"}},
		{Profile: "p", Scopes: []string{"b a", "a"}, Audiences: []string{"x", "x"}, MinValid: time.Hour, Force: true},
	}
	if a, b := keyOf(same[0]).base(), keyOf(same[1]).base(); a != b {
		t.Errorf("equal requests have different files: %s %s", a, b)
	}
	distinct := []helper.Request{
		{Profile: "p"},
		{Profile: "p", Scopes: []string{"a"}},
		{Profile: "p", Audiences: []string{"a"}},
		{Profile: "p", Scopes: []string{"a b"}},
		{Profile: "p", Scopes: []string{"a"}, Audiences: []string{"b"}},
		{Profile: "a b"},
		{Profile: "a_b"},
	}
	seen := map[string]int{}
	for i, r := range distinct {
		b := keyOf(r).base()
		if j, ok := seen[b]; ok {
			t.Errorf("requests %d and %d share the file %s", j, i, b)
		}
		seen[b] = i
	}
	// Known answer: sha256("wlcg\x00openid storage.read:/\x00https://se.example.org")[:8].
	if got := keyOf(helper.Request{Profile: "wlcg", Scopes: []string{"storage.read:/", "openid"}, Audiences: []string{"https://se.example.org"}}).base(); got != "wlcg-"+knownHash {
		t.Errorf("base = %s, want wlcg-%s", got, knownHash)
	}
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

// printf 'wlcg\0openid storage.read:/\0https://se.example.org' | sha256sum | cut -c1-16
const knownHash = "04f1e56a7db68660"

func TestPutListDelete(t *testing.T) {
	c, clk := newCache(t)
	ctx := context.Background()
	reqs := []helper.Request{
		{Profile: "a", Scopes: []string{"s2"}},
		{Profile: "a"},
		{Profile: "a", Scopes: []string{"s1"}, Audiences: []string{"x"}},
		{Profile: "a b"},
		{Profile: "a_b"},
		{Profile: "ab"},
	}
	for i, r := range reqs {
		putAt(t, c, clk, t0, r, tok(fmt.Sprintf("T%d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	// A corrupt file with profile a's prefix, and debris from a killed writer.
	corruptPath := filepath.Join(c.Dir, "a-0123456789abcdef.json")
	writeRaw(t, corruptPath, []byte("{"), 0o600)
	writeRaw(t, filepath.Join(c.Dir, "."+keyOf(reqs[0]).base()+".json.tmp-0011223344556677"), []byte("partial"), 0o600)

	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, fmt.Sprintf("%s|%s|%s=%s", e.Request.Profile, strings.Join(e.Request.Scopes, " "), strings.Join(e.Request.Audiences, " "), e.Token.AccessToken))
		if !e.ObtainedAt.Equal(t0) || e.Path != entryPath(c, e.Request) || e.Token.Source == SourceCache {
			t.Errorf("entry %+v", e)
		}
	}
	want := []string{"a||=T1", "a|s1|x=T2", "a|s2|=T0", "a b||=T3", "a_b||=T4", "ab||=T5"}
	if !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}

	n, err := c.DeleteProfile(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("DeleteProfile removed %d, want 4 (three entries and the corrupt one)", n)
	}
	for _, r := range reqs[:3] {
		for _, ext := range []string{".json", ".lock"} {
			if _, err := os.Lstat(filepath.Join(c.Dir, keyOf(r).base()+ext)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s%s still there after logout", keyOf(r).base(), ext)
			}
		}
	}
	list, _ = c.List()
	if len(list) != 3 {
		t.Errorf("after DeleteProfile: %d entries, want the 3 of other profiles", len(list))
	}
	if n, err := c.DeleteProfile(ctx, "a"); n != 0 || err != nil {
		t.Errorf("second DeleteProfile = %d, %v", n, err)
	}
	ents, _ := os.ReadDir(c.Dir)
	for _, de := range ents {
		if strings.Contains(de.Name(), ".tmp-") {
			t.Errorf("temporary file left after logout: %s", de.Name())
		}
	}

	if err := c.Delete(ctx, helper.Request{Profile: "a b", MinValid: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, helper.Request{Profile: "a b"}); err != nil {
		t.Errorf("deleting a missing entry: %v", err)
	}
	list, _ = c.List()
	if len(list) != 2 || list[0].Request.Profile != "a_b" || list[1].Request.Profile != "ab" {
		t.Errorf("after Delete: %+v", list)
	}
	checkPrivate(t, c.Dir)
}

func TestListMissingDir(t *testing.T) {
	c, _ := newCache(t)
	list, err := c.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List on a missing dir = %v, %v", list, err)
	}
}

func TestRelativeDirRefused(t *testing.T) {
	for _, dir := range []string{"", "tokens", "./x"} {
		c := &Cache{Dir: dir}
		_, err := c.Get(context.Background(), helper.Request{}, func(context.Context) (*helper.Token, error) {
			t.Fatal("acquire called")
			return nil, nil
		})
		if err == nil {
			t.Errorf("Dir %q accepted", dir)
		}
		if _, err := LockProfile(context.Background(), dir, "p"); err == nil {
			t.Errorf("LockProfile in %q accepted", dir)
		}
	}
}

func TestPutRejectsBadTokens(t *testing.T) {
	c, _ := newCache(t)
	for _, tk := range []*helper.Token{nil, {}, {AccessToken: "a\nb"}} {
		if err := c.Put(context.Background(), helper.Request{Profile: "p"}, tk); err == nil {
			t.Errorf("Put(%v) accepted", tk)
		}
	}
}

func TestForeignDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a directory owned by someone else")
	}
	dir := filepath.Join(t.TempDir(), "tokens")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: dir}
	a := &acquirer{tok: tok("NEW", time.Now().Add(time.Hour))}
	_, err := c.Get(context.Background(), helper.Request{Profile: "p"}, a.acquire)
	if !helper.IsKind(err, helper.KindUnsafe) || a.calls.Load() != 0 {
		t.Errorf("err = %v, calls %d; want KindUnsafe before any acquisition", err, a.calls.Load())
	}
}

// TestConcurrentGoroutines: many goroutines on an expired entry cause one
// acquisition and all get its token.
func TestConcurrentGoroutines(t *testing.T) {
	c, clk := newCache(t)
	req := helper.Request{Profile: "p", Scopes: []string{"s"}, MinValid: time.Minute}
	putAt(t, c, clk, t0.Add(-2*time.Hour), req, tok("OLD", t0.Add(-time.Hour)))
	var calls atomic.Int32
	acquire := func(ctx context.Context) (*helper.Token, error) {
		n := calls.Add(1)
		time.Sleep(20 * time.Millisecond) // widen the critical section
		return tok(fmt.Sprintf("NEW%d", n), t0.Add(time.Hour)), nil
	}
	const n = 32
	start := make(chan struct{})
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			tk, err := c.Get(context.Background(), req, acquire)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = tk.AccessToken
		})
	}
	close(start)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("%d acquisitions, want 1", calls.Load())
	}
	for i, g := range got {
		if g != "NEW1" {
			t.Errorf("goroutine %d got %q", i, g)
		}
	}
}

// TestConcurrentForce: N callers forcing at once (all read the entry
// before the first acquisition completes) cause one acquisition.
func TestConcurrentForce(t *testing.T) {
	c, clk := newCache(t)
	req := helper.Request{Profile: "p", Force: true}
	putAt(t, c, clk, t0, req, tok("OLD", t0.Add(time.Hour)))
	const n = 16
	var waiting atomic.Int32
	allWaiting := make(chan struct{})
	c.onLockWait = func() {
		if waiting.Add(1) == n-1 {
			close(allWaiting)
		}
	}
	var calls atomic.Int32
	acquire := func(ctx context.Context) (*helper.Token, error) {
		calls.Add(1)
		select {
		case <-allWaiting:
		case <-time.After(10 * time.Second):
			t.Error("the other callers never queued on the lock")
		}
		return tok("NEW", t0.Add(time.Hour)), nil
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			tk, err := c.Get(context.Background(), req, acquire)
			if err != nil {
				t.Error(err)
				return
			}
			if tk.AccessToken != "NEW" {
				t.Errorf("got %q, want NEW", tk.AccessToken)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("%d acquisitions, want 1", calls.Load())
	}
	// A forced call that starts after the refresh gets a new token.
	if _, err := c.Get(context.Background(), req, acquire); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Errorf("a later forced call did not acquire")
	}
}

func TestLockTimeout(t *testing.T) {
	c, clk := newCache(t)
	req := helper.Request{Profile: "p"}
	putAt(t, c, clk, t0, req, tok("OLD", t0.Add(-time.Hour)))
	lockPath := filepath.Join(c.Dir, keyOf(req).base()+".lock")
	unlock, err := lockFile(context.Background(), lockPath, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	a := &acquirer{tok: tok("NEW", t0.Add(time.Hour))}

	t.Run("LockTimeout", func(t *testing.T) {
		c := *c
		c.LockTimeout = 100 * time.Millisecond
		start := time.Now()
		_, err := c.Get(context.Background(), req, a.acquire)
		if !helper.IsKind(err, helper.KindUnavailable) || !strings.Contains(err.Error(), lockPath) {
			t.Fatalf("err = %v, want KindUnavailable naming %s", err, lockPath)
		}
		if d := time.Since(start); d < 100*time.Millisecond || d > 30*time.Second {
			t.Errorf("gave up after %v", d)
		}
		if !strings.Contains(err.Error(), "fuser -v "+lockPath) {
			t.Errorf("no fix in %q", err)
		}
	})
	t.Run("ctx deadline", func(t *testing.T) {
		c := *c
		c.LockTimeout = time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Get(ctx, req, a.acquire)
		if !helper.IsKind(err, helper.KindUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), lockPath) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ctx cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := *c
		c.LockTimeout = time.Hour
		c.onLockWait = cancel
		_, err := c.Get(ctx, req, a.acquire)
		if !helper.IsKind(err, helper.KindUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	if a.calls.Load() != 0 {
		t.Errorf("acquire called while the lock was held")
	}
	// Once the holder is gone, Get proceeds.
	unlock()
	if tk, err := c.Get(context.Background(), req, a.acquire); err != nil || tk.AccessToken != "NEW" {
		t.Errorf("after unlock: %v, %v", tk, err)
	}
}

// TestLockFileUnlinkedWhileWaiting: a waiter that locks a lock file which
// was unlinked meanwhile must not believe it holds the lock.
func TestLockFileUnlinkedWhileWaiting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	ctx := context.Background()
	unlockA, err := lockFile(ctx, path, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	gotB := make(chan func())
	go func() {
		unlockB, err := lockFile(ctx, path, 10*time.Second, func() { close(waiting) })
		if err != nil {
			t.Error(err)
		}
		gotB <- unlockB
	}()
	<-waiting
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	unlockA()
	unlockB := <-gotB
	if unlockB == nil {
		return
	}
	defer unlockB()
	// B must hold the lock on the file now at path: C cannot take it.
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("B holds no file at the path: %v", err)
	}
	unlockC, err := lockFile(ctx, path, 50*time.Millisecond, nil)
	if err == nil {
		unlockC()
		t.Fatal("C took the lock B holds")
	}
}

func TestLockProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	unlock, err := LockProfile(ctx, dir, "wlcg")
	if err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, dir)
	// Another profile is independent.
	u2, err := LockProfile(ctx, dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	u2()
	// The same profile waits, honouring ctx.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := LockProfile(short, dir, "wlcg"); !helper.IsKind(err, helper.KindUnavailable) || !strings.Contains(err.Error(), ".profile.lock") {
		t.Errorf("second lock: %v", err)
	}
	// The profile lock is not any entry lock.
	c := &Cache{Dir: dir, LockTimeout: time.Second}
	if err := c.Put(ctx, helper.Request{Profile: "wlcg"}, tok("T", time.Now().Add(time.Hour))); err != nil {
		t.Errorf("Put while the profile lock is held: %v", err)
	}
	unlock()
	unlock() // idempotent
	u3, err := LockProfile(ctx, dir, "wlcg")
	if err != nil {
		t.Fatal(err)
	}
	u3()
}

// TestLockProfileSerialises: goroutines that each read, bump and write a
// counter under the profile lock never lose an update (the rotated
// refresh token scenario).
func TestLockProfileSerialises(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "rt")
	writeRaw(t, counter, []byte("0"), 0o600)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			unlock, err := LockProfile(context.Background(), dir, "p")
			if err != nil {
				t.Error(err)
				return
			}
			defer unlock()
			b, _ := os.ReadFile(counter)
			var v int
			if _, err := fmt.Sscan(string(b), &v); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond) // widen the read-modify-write window
			if err := os.WriteFile(counter, []byte(fmt.Sprint(v+1)), 0o600); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b, _ := os.ReadFile(counter); string(b) != fmt.Sprint(n) {
		t.Errorf("counter = %s, want %d", b, n)
	}
}

func TestLogNeverShowsTokens(t *testing.T) {
	c, clk := newCache(t)
	var logs []string
	c.Log = func(f string, args ...any) { logs = append(logs, fmt.Sprintf(f, args...)) }
	req := helper.Request{Profile: "p"}
	b := validEntryBytes(t, req, "SECRETTOKEN", t0.Add(time.Hour))
	for _, bad := range [][]byte{
		b[:len(b)-20],
		[]byte(strings.Replace(string(b), `"SECRETTOKEN"`, `"SECRET TOKEN"`, 1)),
		[]byte(strings.Replace(string(b), `"SECRETTOKEN"`, `SECRETTOKEN`, 1)),
		[]byte(strings.Replace(string(b), `"version": 1`, `"version": "SECRETTOKEN"`, 1)),
	} {
		writeRaw(t, entryPath(c, req), bad, 0o600)
		a := &acquirer{tok: tok("NEW", clk.Now().Add(time.Hour))}
		if _, err := c.Get(context.Background(), req, a.acquire); err != nil {
			t.Fatal(err)
		}
	}
	if len(logs) == 0 {
		t.Fatal("nothing logged for corrupt entries")
	}
	for _, l := range logs {
		if strings.Contains(l, "SECRET") || strings.Contains(l, "NEW") {
			t.Errorf("log line leaks token material: %q", l)
		}
	}
}

func BenchmarkGetWarm(b *testing.B) {
	c := &Cache{Dir: b.TempDir()}
	req := helper.Request{Profile: "wlcg", Scopes: []string{"storage.read:/", "openid"}, Audiences: []string{"https://se.example.org"}, MinValid: time.Minute}
	token := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 50)
	if err := c.Put(context.Background(), req, tok(token, time.Now().Add(time.Hour))); err != nil {
		b.Fatal(err)
	}
	acquire := func(context.Context) (*helper.Token, error) { b.Fatal("cache miss"); return nil, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(context.Background(), req, acquire); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSymlinkTargetUntouched: replacing a symlink at an entry replaces the
// link, never writes through it.
func TestSymlinkTargetUntouched(t *testing.T) {
	c, _ := newCache(t)
	req := helper.Request{Profile: "p"}
	target := filepath.Join(t.TempDir(), "victim")
	writeRaw(t, target, []byte("keep"), 0o600)
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, entryPath(c, req)); err != nil {
		t.Fatal(err)
	}
	a := &acquirer{tok: tok("NEW", t0.Add(time.Hour))}
	if _, err := c.Get(context.Background(), req, a.acquire); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("symlink target written: %q", b)
	}
	if fi, err := os.Lstat(entryPath(c, req)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("entry is not a regular file now: %v %v", fi, err)
	}
}

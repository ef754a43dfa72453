package secret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// The CLI's helper.UI can be used as the Prompter as it is.
var _ Prompter = helper.UI(nil)

func TestNoTerminal(t *testing.T) {
	k := testKey(t)
	mustCreate(t, k, "pw")
	for _, tc := range []struct {
		name     string
		u        *Unlocker
		wantHint string
	}{
		{"no prompter", &Unlocker{Cache: NewMemoryCache(nil)}, "unlocks profile cms on this node for 12h0m0s"},
		{"prompter without terminal", &Unlocker{Prompter: &fakePrompter{answers: []string{"pw"}}}, ""},
		{"env named but unset", &Unlocker{Sources: Sources{Env: "TH_PASS", Environ: []string{"TH_PASS="}}}, ""},
		{"cache disabled", &Unlocker{Cache: NewMemoryCache(nil), UnlockFor: -1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.Options = testOpts()
			_, err := tc.u.Open(context.Background(), k)
			he := helperErr(t, err, helper.KindLoginNeeded)
			for _, w := range []string{"passphrase_env", "passphrase_file", "passphrase_cmd", "tokenhelper login -p cms", "profile cms"} {
				if !strings.Contains(he.Error(), w) {
					t.Errorf("error %q does not mention %q", he, w)
				}
			}
			if tc.wantHint != "" && !strings.Contains(he.Fix, tc.wantHint) {
				t.Errorf("fix %q lacks %q", he.Fix, tc.wantHint)
			}
			if tc.wantHint == "" && strings.Contains(he.Fix, "unlocks") {
				t.Errorf("fix %q promises an unlock cache that is not there", he.Fix)
			}
			if p, ok := tc.u.Prompter.(*fakePrompter); ok && len(p.prompts) != 0 {
				t.Error("prompted without a terminal")
			}
		})
	}
}

func TestCache(t *testing.T) {
	k := testKey(t)
	mustCreate(t, k, "pw")
	clock := &fakeClock{now: t0}
	cache := NewMemoryCache(clock)
	ctx := context.Background()

	p := &fakePrompter{terminal: true, answers: []string{"pw"}}
	var debug []string
	u := &Unlocker{Cache: cache, UnlockFor: time.Hour, Prompter: p, Options: testOpts(),
		Debugf: func(f string, a ...any) { debug = append(debug, f) }}
	if _, ok := u.UnlockedUntil(k); ok {
		t.Fatal("unlocked before any unlock")
	}
	if _, err := u.Open(ctx, k); err != nil { // miss: prompts, caches
		t.Fatal(err)
	}
	if until, ok := u.UnlockedUntil(k); !ok || !until.Equal(t0.Add(time.Hour)) {
		t.Errorf("UnlockedUntil = %v, %v", until, ok)
	}

	// A batch job: no terminal, no sources. Hit.
	batch := &Unlocker{Cache: cache, UnlockFor: time.Hour, Options: testOpts()}
	clock.Advance(59 * time.Minute)
	id, err := batch.Open(ctx, k)
	if err != nil {
		t.Fatalf("cache hit: %v", err)
	}
	ct, _ := k.Seal([]byte("rt"))
	if pt, err := id.Open(ct); err != nil || string(pt) != "rt" {
		t.Fatal("cached identity does not open secrets")
	}
	// Expiry: bounded from the unlock, not extended by the hit.
	clock.Advance(time.Minute)
	if _, err := batch.Open(ctx, k); !helper.IsKind(err, helper.KindLoginNeeded) {
		t.Fatalf("after expiry: %v", err)
	}
	if len(p.prompts) != 1 {
		t.Errorf("prompts = %d, want 1", len(p.prompts))
	}

	// Lock.
	p.answers = []string{"pw"}
	if _, err := u.Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := u.Lock(k); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Open(ctx, k); !helper.IsKind(err, helper.KindLoginNeeded) {
		t.Fatalf("after Lock: %v", err)
	}

	// Disabled cache: neither written nor read.
	p.answers = []string{"pw"}
	off := &Unlocker{Cache: cache, UnlockFor: -time.Second, Prompter: p, Options: testOpts()}
	if _, err := off.Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 0 {
		t.Error("cached although UnlockFor < 0")
	}
	if err := cache.Put(k.CacheID(), []byte(id.x.String()), time.Hour); err != nil { // a valid entry
		t.Fatal(err)
	}
	p.prompts = nil
	if _, err := off.Open(ctx, k); err == nil || len(p.prompts) != 1 {
		t.Errorf("disabled cache was read: %v, prompts %q", err, p.prompts)
	}
	for _, d := range debug {
		if strings.Contains(d, "AGE-SECRET") {
			t.Errorf("debug output leaks: %q", d)
		}
	}
}

// A cache entry from a replaced key (logout --forget, login again) must not
// be used, and is removed.
func TestCacheStaleEntry(t *testing.T) {
	k := testKey(t)
	cache := NewMemoryCache(&fakeClock{now: t0})
	u := &Unlocker{Cache: cache, Prompter: &fakePrompter{terminal: true, answers: []string{"pw"}}, Options: testOpts()}
	mustCreate(t, k, "pw")
	if _, err := u.Open(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	os.Remove(k.Path) // a forget that did not reach the cache
	id2 := mustCreate(t, k, "pw2")
	batch := &Unlocker{Cache: cache, Options: testOpts()}
	if _, err := batch.Open(context.Background(), k); !helper.IsKind(err, helper.KindLoginNeeded) {
		t.Fatalf("stale cache entry used: %v", err)
	}
	if cache.Len() != 0 {
		t.Error("stale entry not removed")
	}
	_ = id2
}

type brokenCache struct{ puts int }

func (b *brokenCache) Get(string) ([]byte, time.Time, error) {
	return nil, time.Time{}, errors.Join(ErrCacheUnavailable, errors.New("operation not permitted"))
}
func (b *brokenCache) Put(string, []byte, time.Duration) error {
	b.puts++
	return errors.Join(ErrCacheUnavailable, errors.New("operation not permitted"))
}
func (b *brokenCache) Delete(string) error { return ErrCacheUnavailable }

func TestUnavailableCacheDegradesSilently(t *testing.T) {
	k := testKey(t)
	mustCreate(t, k, "pw")
	var debug []string
	bc := &brokenCache{}
	u := &Unlocker{Cache: bc, Prompter: &fakePrompter{terminal: true, answers: []string{"pw"}}, Options: testOpts(),
		Debugf: func(f string, a ...any) { debug = append(debug, fmt.Sprintf(f, a...)) }}
	if _, err := u.Open(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if bc.puts != 1 {
		t.Errorf("puts = %d", bc.puts)
	}
	if !strings.Contains(strings.Join(debug, "\n"), "operation not permitted") {
		t.Errorf("debug output lacks the reason: %q", debug)
	}
	if err := u.Lock(k); err != nil {
		t.Errorf("Lock with unavailable cache: %v", err)
	}
	if err := u.Forget(k); err != nil {
		t.Errorf("Forget with unavailable cache: %v", err)
	}
}

func TestCreateFlows(t *testing.T) {
	ctx := context.Background()
	t.Run("prompt twice, with retries", func(t *testing.T) {
		k := testKey(t)
		cache := NewMemoryCache(&fakeClock{now: t0})
		p := &fakePrompter{terminal: true, answers: []string{"", "one", "two", "good", "good "}}
		u := &Unlocker{Prompter: p, Cache: cache, Options: testOpts()}
		id, err := u.Create(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"New passphrase for profile cms: ",
			"An empty passphrase is refused. New passphrase for profile cms: ",
			"Repeat the passphrase: ",
			"The passphrases differ. New passphrase for profile cms: ",
			"Repeat the passphrase: ",
		}
		if strings.Join(p.prompts, "|") != strings.Join(want, "|") {
			t.Errorf("prompts =\n%q\nwant\n%q", p.prompts, want)
		}
		if cache.Len() != 1 {
			t.Error("new key not unlocked in the cache")
		}
		if id2, err := k.Unlock("good", testOpts()); err != nil || id2.Recipient() != id.Recipient() {
			t.Fatal(err)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		k := testKey(t)
		p := &fakePrompter{terminal: true, answers: []string{"pw-alpha", "pw-beta", "pw-gamma", "pw-delta", "", ""}}
		_, err := (&Unlocker{Prompter: p, Options: testOpts()}).Create(ctx, k, false)
		_ = helperErr(t, err, helper.KindUsage)
		noLeak(t, err, "pw-alpha", "pw-beta", "pw-gamma", "pw-delta")
		if ok, _ := k.Exists(); ok {
			t.Error("key file created")
		}
	})
	t.Run("from a source, no prompt", func(t *testing.T) {
		k := testKey(t)
		p := &fakePrompter{terminal: true}
		u := &Unlocker{Prompter: p, Sources: Sources{Env: "P", Environ: []string{"P=robot-pw"}}, Options: testOpts()}
		if _, err := u.Create(ctx, k, false); err != nil {
			t.Fatal(err)
		}
		if len(p.prompts) != 0 {
			t.Error("prompted although a source was set")
		}
		if _, err := k.Unlock("robot-pw", testOpts()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no terminal", func(t *testing.T) {
		k := testKey(t)
		_, err := (&Unlocker{Options: testOpts()}).Create(ctx, k, false)
		he := helperErr(t, err, helper.KindLoginNeeded)
		if !strings.Contains(he.Fix, "plaintext = true") || !strings.Contains(he.Fix, "passphrase_file") {
			t.Errorf("fix = %q", he.Fix)
		}
	})
	t.Run("existing key", func(t *testing.T) {
		k := testKey(t)
		mustCreate(t, k, "pw")
		p := &fakePrompter{terminal: true, answers: []string{"x", "x"}}
		_, err := (&Unlocker{Prompter: p, Options: testOpts()}).Create(ctx, k, false)
		_ = helperErr(t, err, helper.KindUsage)
		if len(p.prompts) != 0 {
			t.Error("prompted for a passphrase that cannot be used")
		}
	})
}

func TestChangePassphrase(t *testing.T) {
	ctx := context.Background()
	k := testKey(t)
	mustCreate(t, k, "forgotten")
	ct, _ := k.Seal([]byte("rt"))
	cache := NewMemoryCache(&fakeClock{now: t0})

	// Unlocked this morning...
	u := &Unlocker{Cache: cache, Prompter: &fakePrompter{terminal: true, answers: []string{"forgotten"}}, Options: testOpts()}
	if _, err := u.Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	// ...passphrase forgotten since: change it without the old one.
	p := &fakePrompter{terminal: true, answers: []string{"fresh", "fresh"}}
	u = &Unlocker{Cache: cache, Prompter: p, Options: testOpts()}
	if err := u.ChangePassphrase(ctx, k); err != nil {
		t.Fatal(err)
	}
	if len(p.prompts) != 2 {
		t.Errorf("prompts = %q (the old passphrase must not be asked while unlocked)", p.prompts)
	}
	id, err := k.Unlock("fresh", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := id.Open(ct); err != nil || string(pt) != "rt" {
		t.Fatal("secret lost by a passphrase change")
	}

	// Locked: the old passphrase is asked first.
	if err := u.Lock(k); err != nil {
		t.Fatal(err)
	}
	p = &fakePrompter{terminal: true, answers: []string{"fresh", "third", "third"}}
	u.Prompter = p
	if err := u.ChangePassphrase(ctx, k); err != nil {
		t.Fatal(err)
	}
	if len(p.prompts) != 3 || !strings.HasPrefix(p.prompts[0], "Passphrase for profile cms") {
		t.Errorf("prompts = %q", p.prompts)
	}
	if _, err := k.Unlock("third", testOpts()); err != nil {
		t.Fatal(err)
	}

	// No terminal: refused before anything is asked.
	err = (&Unlocker{Cache: cache, Options: testOpts()}).ChangePassphrase(ctx, k)
	_ = helperErr(t, err, helper.KindUsage)
}

package secret

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// How these tests know whether an open ran scrypt: an Unlocker whose
// Options.MaxWorkFactor is below the key's work factor (testWork) refuses
// every scrypt before deriving anything, with a KindInternal error. So an
// open with such "no-scrypt" options that succeeds did not run scrypt, and
// one that fails with that error tried to.

// opts returns test key options on clock, with scrypt forbidden when
// noScrypt.
func opts(clock *fakeClock, noScrypt bool) KeyOptions {
	o := testOpts()
	o.Now = clock.Now
	if noScrypt {
		o.MaxWorkFactor = testWork - 1
	}
	return o
}

// wantNoScrypt opens k with u (whose options must forbid scrypt) and
// fails unless that works.
func wantNoScrypt(t *testing.T, u *Unlocker, k Key) *Identity {
	t.Helper()
	id, err := u.Open(context.Background(), k)
	if err != nil {
		t.Fatalf("open without scrypt failed (it needed scrypt, or worse): %v", err)
	}
	return id
}

// wantScrypt opens k with u (whose options must forbid scrypt) and fails
// unless the open tried scrypt.
func wantScrypt(t *testing.T, u *Unlocker, k Key) {
	t.Helper()
	_, err := u.Open(context.Background(), k)
	if err == nil {
		t.Fatal("opened without scrypt, want a passphrase check")
	}
	if he := helperErr(t, err, helper.KindInternal); !strings.Contains(he.Msg, "above the accepted maximum") {
		t.Fatalf("open failed, but not at scrypt: %v", err)
	}
}

func envSource(name, value string) Sources {
	return Sources{Env: name, Environ: []string{name + "=" + value}}
}

func TestSourceUnlockIsCached(t *testing.T) {
	ctx := context.Background()
	k := testKey(t)
	mustCreate(t, k, "pw")
	ct, _ := k.Seal([]byte("rt"))
	clock := &fakeClock{now: t0}
	cache := NewMemoryCache(clock)
	unlocker := func(s Sources, noScrypt bool) *Unlocker {
		return &Unlocker{Cache: cache, UnlockFor: time.Hour, Sources: s, Options: opts(clock, noScrypt)}
	}

	// The proof works: with nothing cached, the no-scrypt unlocker fails
	// at scrypt.
	wantScrypt(t, unlocker(envSource("P", "pw"), true), k)
	if cache.Len() != 0 {
		t.Fatal("a failed unlock was cached")
	}

	// First refresh of a batch job: scrypt, and the unlock is remembered.
	if _, err := unlocker(envSource("P", "pw"), false).Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	until, ok := unlocker(Sources{}, false).UnlockedUntil(k)
	if !ok || !until.Equal(t0.Add(time.Hour)) {
		t.Fatalf("UnlockedUntil = %v, %v; want %v", until, ok, t0.Add(time.Hour))
	}

	// Every later refresh (another process: a new Unlocker) with the same
	// source: no scrypt, and the identity opens the secrets.
	clock.Advance(30 * time.Minute)
	for range 3 {
		id := wantNoScrypt(t, unlocker(envSource("P", "pw"), true), k)
		if pt, err := id.Open(ct); err != nil || string(pt) != "rt" {
			t.Fatalf("cached identity does not open secrets: %v", err)
		}
	}

	// The timeout counts from the unlock: not extended by use.
	clock.Advance(30 * time.Minute)
	wantScrypt(t, unlocker(envSource("P", "pw"), true), k)
	if _, err := unlocker(envSource("P", "pw"), false).Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantNoScrypt(t, unlocker(envSource("P", "pw"), true), k)

	// A job without a passphrase source uses the entry too, as after a
	// prompt.
	wantNoScrypt(t, unlocker(Sources{}, true), k)
}

// The rule for a source whose passphrase changed: the entry vouches for a
// source (by name), checked against one state of the key file, not for a
// passphrase value. See "What an unlock vouches for" in doc.go.
func TestSourceChangedPassphrase(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: t0}
	setup := func(t *testing.T) (Key, *MemoryCache, func(Sources, bool) *Unlocker) {
		k := testKey(t)
		mustCreate(t, k, "pw")
		cache := NewMemoryCache(clock)
		u := func(s Sources, noScrypt bool) *Unlocker {
			return &Unlocker{Cache: cache, UnlockFor: time.Hour, Sources: s, Options: opts(clock, noScrypt)}
		}
		if _, err := u(envSource("P", "pw"), false).Open(ctx, k); err != nil {
			t.Fatal(err)
		}
		return k, cache, u
	}

	t.Run("passwd: old passphrase refused at once, new one checked once", func(t *testing.T) {
		k, _, u := setup(t)
		// tokenhelper passwd (here, or on another node sharing the key
		// file) re-encrypts the identity: the entry no longer vouches.
		id, _ := k.Unlock("pw", testOpts())
		if err := k.SetPassphrase(id, "pw2", testOpts()); err != nil {
			t.Fatal(err)
		}
		wantScrypt(t, u(envSource("P", "pw"), true), k)
		_, err := u(envSource("P", "pw"), false).Open(ctx, k)
		he := helperErr(t, err, helper.KindDenied)
		if !strings.Contains(he.Msg, "wrong passphrase for profile cms (from passphrase_env P)") {
			t.Errorf("msg = %q", he.Msg)
		}
		noLeak(t, err, "pw2")
		if _, err := u(envSource("P", "pw2"), false).Open(ctx, k); err != nil {
			t.Fatal(err)
		}
		wantNoScrypt(t, u(envSource("P", "pw2"), true), k)
	})

	t.Run("passphrase_file rewritten: checked again", func(t *testing.T) {
		k, _, u := setup(t)
		file := writeFile(t, "pw\n", 0o600)
		fileSrc := Sources{File: file}
		wantScrypt(t, u(fileSrc, true), k) // a source not yet checked
		if _, err := u(fileSrc, false).Open(ctx, k); err != nil {
			t.Fatal(err)
		}
		wantNoScrypt(t, u(fileSrc, true), k)
		// Replaced (as editors and configuration management do): a new
		// inode, so a new print even within one timestamp tick.
		tmp := filepath.Join(filepath.Dir(file), "pass.new")
		if err := os.WriteFile(tmp, []byte("changed\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
		wantScrypt(t, u(fileSrc, true), k)
		_, err := u(fileSrc, false).Open(ctx, k)
		_ = helperErr(t, err, helper.KindDenied)
		noLeak(t, err, "changed")
	})

	t.Run("a different source: checked once, without extending the unlock", func(t *testing.T) {
		k, _, u := setup(t)
		before, _ := u(Sources{}, false).UnlockedUntil(k)
		clock.Advance(10 * time.Minute)
		cmd := Sources{Cmd: "echo pw"}
		wantScrypt(t, u(cmd, true), k)
		if _, err := u(cmd, false).Open(ctx, k); err != nil {
			t.Fatal(err)
		}
		wantNoScrypt(t, u(cmd, true), k)
		wantNoScrypt(t, u(envSource("P", "pw"), true), k) // still vouched
		wantScrypt(t, u(envSource("Q", "pw"), true), k)   // another variable is another source
		if after, _ := u(Sources{}, false).UnlockedUntil(k); !after.Equal(before) {
			t.Errorf("unlocked until %v after adding a source, was %v", after, before)
		}
		clock.Advance(50 * time.Minute)
		wantScrypt(t, u(cmd, true), k)
	})

	t.Run("environment value changed, key file not: accepted until the unlock ends", func(t *testing.T) {
		// The documented limit: no cheap check of the value exists that
		// would not be a fast passphrase oracle in the keyring.
		k, _, u := setup(t)
		wantNoScrypt(t, u(envSource("P", "typo"), true), k)
		clock.Advance(time.Hour)
		_, err := u(envSource("P", "typo"), false).Open(ctx, k)
		_ = helperErr(t, err, helper.KindDenied)
	})

	t.Run("lock: checked again", func(t *testing.T) {
		k, cache, u := setup(t)
		if err := u(Sources{}, false).Lock(k); err != nil {
			t.Fatal(err)
		}
		if cache.Len() != 0 {
			t.Fatal("Lock left the entry")
		}
		wantScrypt(t, u(envSource("P", "pw"), true), k)
		_, err := u(envSource("P", "typo"), false).Open(ctx, k)
		_ = helperErr(t, err, helper.KindDenied)
	})

	t.Run("logout: forgotten with the key", func(t *testing.T) {
		k, cache, u := setup(t)
		if err := u(Sources{}, false).Forget(k); err != nil {
			t.Fatal(err)
		}
		if cache.Len() != 0 {
			t.Fatal("Forget left the entry")
		}
		mustCreate(t, k, "pw")
		wantScrypt(t, u(envSource("P", "pw"), true), k)
	})

	t.Run("a prompted unlock vouches for no source", func(t *testing.T) {
		k := testKey(t)
		mustCreate(t, k, "pw")
		cache := NewMemoryCache(clock)
		p := &Unlocker{Cache: cache, Prompter: &fakePrompter{terminal: true, answers: []string{"pw"}}, Options: opts(clock, false)}
		if _, err := p.Open(ctx, k); err != nil {
			t.Fatal(err)
		}
		src := &Unlocker{Cache: cache, Sources: envSource("P", "typo"), Options: opts(clock, false)}
		_, err := src.Open(ctx, k)
		_ = helperErr(t, err, helper.KindDenied)
		if cache.Len() != 1 {
			t.Error("a wrong source passphrase removed the prompted unlock")
		}
	})
}

func TestSourceCacheDisabledOrEmpty(t *testing.T) {
	ctx := context.Background()
	k := testKey(t)
	mustCreate(t, k, "pw")
	clock := &fakeClock{now: t0}
	cache := NewMemoryCache(clock)

	// A wrong source passphrase with nothing cached: denied, nothing cached.
	_, err := (&Unlocker{Cache: cache, Sources: envSource("P", "typo"), Options: opts(clock, false)}).Open(ctx, k)
	_ = helperErr(t, err, helper.KindDenied)
	if cache.Len() != 0 {
		t.Error("a wrong passphrase was cached")
	}

	// unlock_for < 0: neither written...
	off := func(noScrypt bool) *Unlocker {
		return &Unlocker{Cache: cache, UnlockFor: -time.Second, Sources: envSource("P", "pw"), Options: opts(clock, noScrypt)}
	}
	if _, err := off(false).Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 0 {
		t.Error("cached although UnlockFor < 0")
	}
	// ...nor read, even an entry that vouches for this source.
	on := &Unlocker{Cache: cache, Sources: envSource("P", "pw"), Options: opts(clock, false)}
	if _, err := on.Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantNoScrypt(t, &Unlocker{Cache: cache, Sources: envSource("P", "pw"), Options: opts(clock, true)}, k)
	wantScrypt(t, off(true), k)
}

func TestSourceCreateIsCached(t *testing.T) {
	clock := &fakeClock{now: t0}
	cache := NewMemoryCache(clock)
	k := testKey(t)
	c := &Unlocker{Cache: cache, Sources: envSource("P", "robot-pw"), Options: opts(clock, false)}
	if _, err := c.Create(context.Background(), k, false); err != nil {
		t.Fatal(err)
	}
	wantNoScrypt(t, &Unlocker{Cache: cache, Sources: envSource("P", "robot-pw"), Options: opts(clock, true)}, k)

	// A passphrase change at the prompt vouches for the new protection
	// only: the source is checked again.
	ch := &Unlocker{Cache: cache, Prompter: &fakePrompter{terminal: true, answers: []string{"new-pw", "new-pw"}}, Options: opts(clock, false)}
	if err := ch.ChangePassphrase(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	wantScrypt(t, &Unlocker{Cache: cache, Sources: envSource("P", "robot-pw"), Options: opts(clock, true)}, k)
	wantNoScrypt(t, &Unlocker{Cache: cache, Options: opts(clock, true)}, k) // no source: the entry opens it
}

func TestCacheEntryFormat(t *testing.T) {
	ks := strings.Repeat("ab", 32)
	p1, p2 := sourcePrint("env", "P"), sourcePrint("file", "/p", "dev=1 ino=2")
	e := cacheEntry{identity: "AGE-SECRET-KEY-1X", keyState: ks}.with(p1).with(p2).with(p1)
	got := parseCacheEntry(e.marshal())
	if got.identity != e.identity || got.keyState != ks || len(got.sources) != 2 || !got.vouches(ks, p1) || !got.vouches(ks, p2) {
		t.Fatalf("round trip: %+v", got)
	}
	if got.vouches(strings.Repeat("cd", 32), p1) || got.vouches(ks, sourcePrint("env", "Q")) || got.vouches(ks, "") {
		t.Error("vouches for another key state or source")
	}
	// Bounded: the oldest source goes first.
	for i := range maxVouched + 3 {
		e = e.with(sourcePrint("env", string(rune('a'+i))))
	}
	if got := parseCacheEntry(e.marshal()); len(got.sources) != maxVouched || got.vouches(ks, p1) {
		t.Errorf("%d sources kept, the oldest vouched: %v", len(got.sources), got.vouches(ks, p1))
	}
	for _, tc := range []struct{ name, text string }{
		{"first version: identity only", "AGE-SECRET-KEY-1X\n"},
		{"sources without key state", "AGE-SECRET-KEY-1X\nsrc " + p1 + "\n"},
		{"malformed lines", "AGE-SECRET-KEY-1X\nkey zz\nsrc " + p1 + "x\nsrc\nkey\n\n"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseCacheEntry([]byte(tc.text))
			if got.keyState != "" || len(got.sources) != 0 || got.vouches("", p1) {
				t.Errorf("parsed %+v", got)
			}
		})
	}
}

// The source print is a function of the source's configuration, never of
// the passphrase it gives.
func TestSourcePrintIgnoresPassphrase(t *testing.T) {
	ctx := context.Background()
	file := writeFile(t, "one\n", 0o600)
	for name, pair := range map[string][2]Sources{
		"env": {envSource("P", "one"), envSource("P", "two")},
		"cmd": {{Cmd: "echo $X", Environ: []string{"X=one"}}, {Cmd: "echo $X", Environ: []string{"X=two"}}},
	} {
		t.Run(name, func(t *testing.T) {
			p1, s1, err1 := pair[0].passphrase(ctx, "cms")
			p2, s2, err2 := pair[1].passphrase(ctx, "cms")
			if err1 != nil || err2 != nil || p1 == p2 {
				t.Fatalf("%q %v, %q %v", p1, err1, p2, err2)
			}
			if s1.print != s2.print || strings.Contains(s1.print, p1) {
				t.Errorf("prints %q, %q", s1.print, s2.print)
			}
		})
	}
	_, s1, err := Sources{File: file}.passphrase(ctx, "cms")
	if err != nil {
		t.Fatal(err)
	}
	_, s2, _ := Sources{File: file}.passphrase(ctx, "cms")
	_, s3, _ := envSource("P", "one").passphrase(ctx, "cms")
	if s1.print != s2.print || s1.print == s3.print {
		t.Errorf("file prints %q, %q; env %q", s1.print, s2.print, s3.print)
	}
}

//go:build linux

package secret

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhelper/tokenhelper/helper"
)

// realKeyring returns the kernel keyring cache, or skips when keyctl is
// not permitted here (containers with the default seccomp profile).
func realKeyring(t *testing.T) *KeyringCache {
	t.Helper()
	c := NewKeyringCache(nil)
	if err := c.Err(); err != nil {
		t.Skipf("kernel keyring not usable here: %v", err)
	}
	return c
}

func testCacheID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	return "tokenhelper:test:" + hex.EncodeToString(b)
}

// procKeysTimeout returns the expiry column of /proc/keys for the key
// described id in @u ("perm" means no timeout).
func procKeysTimeout(t *testing.T, id string) string {
	t.Helper()
	kid, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", id, 0)
	if err != nil {
		t.Fatalf("search %s: %v", id, err)
	}
	data, err := os.ReadFile("/proc/keys")
	if err != nil {
		t.Skipf("/proc/keys: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == fmt.Sprintf("%08x", kid) {
			return f[3]
		}
	}
	t.Fatalf("key %d not in /proc/keys", kid)
	return ""
}

func TestKeyringCache(t *testing.T) {
	c := realKeyring(t)
	id := testCacheID(t)
	t.Cleanup(func() { _ = c.Delete(id) })

	if _, _, err := c.Get(id); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Get before Put: %v", err)
	}
	if err := c.Put(id, []byte("AGE-SECRET-KEY-ONE"), time.Hour); err != nil {
		t.Fatal(err)
	}
	got, exp, err := c.Get(id)
	if err != nil || string(got) != "AGE-SECRET-KEY-ONE" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expiry in %v, want about 1h", d)
	}
	// The kernel holds a timeout: never a permanent key.
	if to := procKeysTimeout(t, id); to == "perm" || to == "expd" {
		t.Errorf("/proc/keys timeout column = %q, want a timeout", to)
	}
	// Put replaces (one key, new content, new timeout).
	if err := c.Put(id, []byte("AGE-SECRET-KEY-TWO"), 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := c.Get(id); string(got) != "AGE-SECRET-KEY-TWO" {
		t.Errorf("after second Put: %q", got)
	}
	if err := c.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(id); !errors.Is(err, ErrNotCached) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := c.Delete(id); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	// Nothing left in the process keyring either.
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_PROCESS_KEYRING, "user", id, 0); err == nil {
		t.Error("key left in the process keyring")
	}
	if err := c.Put(id, []byte("x"), 0); err == nil {
		t.Error("Put with ttl 0 accepted")
	}
}

func TestKeyringCacheExpiry(t *testing.T) {
	c := realKeyring(t)
	id := testCacheID(t)
	t.Cleanup(func() { _ = c.Delete(id) })
	if err := c.Put(id, []byte("short"), time.Second); err != nil {
		t.Fatal(err)
	}
	// The kernel expires the key; poll it (this waits on the kernel's clock,
	// there is nothing to synchronise with).
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := c.Get(id)
		if errors.Is(err, ErrNotCached) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("key did not expire within 5s of a 1s timeout")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The whole unlock path against the real keyring: a prompted unlock is
// visible to a second Unlocker without terminal (a batch job), Lock ends it.
func TestKeyringUnlocker(t *testing.T) {
	c := realKeyring(t)
	k := testKey(t)
	t.Cleanup(func() { _ = c.Delete(k.CacheID()) })
	mustCreate(t, k, "pw")
	ctx := context.Background()

	u := &Unlocker{Cache: c, UnlockFor: time.Minute, Prompter: &fakePrompter{terminal: true, answers: []string{"pw"}}, Options: testOpts()}
	if _, err := u.Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	batch := &Unlocker{Cache: NewKeyringCache(nil), UnlockFor: time.Minute, Options: testOpts()}
	if _, err := batch.Open(ctx, k); err != nil {
		t.Fatalf("batch unlock from the keyring: %v", err)
	}
	if until, ok := batch.UnlockedUntil(k); !ok || time.Until(until) > time.Minute+time.Second {
		t.Errorf("UnlockedUntil = %v, %v", until, ok)
	}
	if err := u.Lock(k); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Open(ctx, k); !helper.IsKind(err, helper.KindLoginNeeded) {
		t.Fatalf("after Lock: %v", err)
	}
	// Forget without passphrase clears both.
	u.Prompter = &fakePrompter{terminal: true, answers: []string{"pw"}}
	if _, err := u.Open(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := u.Forget(k); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(k.CacheID()); !errors.Is(err, ErrNotCached) {
		t.Errorf("keyring entry survived Forget: %v", err)
	}
}

// An unlock from a passphrase source against the real keyring: a second
// process with the same source does not run scrypt; the entry holds
// nothing derived from the passphrase; lock and logout end it;
// unlock_for < 0 keeps it out.
func TestKeyringSourceUnlock(t *testing.T) {
	c := realKeyring(t)
	k := testKey(t)
	t.Cleanup(func() { _ = c.Delete(k.CacheID()) })
	const pass = "correct horse battery staple"
	mustCreate(t, k, pass)
	src := Sources{Env: "TH_PASS", Environ: []string{"TH_PASS=" + pass}}
	// Each Unlocker gets its own KeyringCache, as separate processes do.
	job := func(noScrypt bool, unlockFor time.Duration) *Unlocker {
		o := KeyOptions{WorkFactor: testWork}
		if noScrypt {
			o.MaxWorkFactor = testWork - 1
		}
		return &Unlocker{Cache: NewKeyringCache(nil), UnlockFor: unlockFor, Sources: src, Options: o}
	}

	wantScrypt(t, job(true, time.Minute), k) // nothing cached yet
	if _, err := job(false, -time.Second).Open(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(k.CacheID()); !errors.Is(err, ErrNotCached) {
		t.Fatalf("unlock_for < 0 wrote the keyring: %v", err)
	}
	if _, err := job(false, time.Minute).Open(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	wantNoScrypt(t, job(true, time.Minute), k)
	wantScrypt(t, job(true, -time.Second), k) // disabled: not read either

	raw, _, err := c.Get(k.CacheID())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "AGE-SECRET-KEY-1") || !strings.HasPrefix(lines[1], "key ") ||
		lines[2] != "src "+sourcePrint("env", "TH_PASS") {
		t.Errorf("entry has %d lines: %q…", len(lines), lines[1:])
	}
	for _, w := range strings.Fields(pass) {
		if strings.Contains(string(raw), w) {
			t.Errorf("entry contains %q of the passphrase", w)
		}
	}
	if to := procKeysTimeout(t, k.CacheID()); to == "perm" || to == "expd" {
		t.Errorf("/proc/keys timeout column = %q, want a timeout", to)
	}

	if err := job(false, time.Minute).Lock(k); err != nil {
		t.Fatal(err)
	}
	wantScrypt(t, job(true, time.Minute), k)
	if _, err := job(false, time.Minute).Open(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if err := job(false, time.Minute).Forget(k); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(k.CacheID()); !errors.Is(err, ErrNotCached) {
		t.Errorf("keyring entry survived Forget: %v", err)
	}
}

func TestParsePayload(t *testing.T) {
	for _, p := range []string{"", "exp=", "exp=x\nsecret", "nope\nsecret", "exp=12"} {
		if _, _, err := parsePayload([]byte(p)); !errors.Is(err, ErrNotCached) {
			t.Errorf("parsePayload(%q) = %v", p, err)
		}
	}
	s, exp, err := parsePayload([]byte("exp=1700000000\nAGE-SECRET"))
	if err != nil || string(s) != "AGE-SECRET" || exp.Unix() != 1700000000 {
		t.Errorf("parsePayload = %q, %v, %v", s, exp, err)
	}
}

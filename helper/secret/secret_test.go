package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/tokenhelper/tokenhelper/helper"
)

// testWork keeps scrypt fast in tests (log2 N = 10: about a millisecond).
const testWork = 10

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func testOpts() KeyOptions {
	return KeyOptions{WorkFactor: testWork, Now: func() time.Time { return t0 }}
}

func testKey(t *testing.T) Key {
	t.Helper()
	return Key{Path: filepath.Join(t.TempDir(), "state", "cms", "key.json"), Profile: "cms"}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakePrompter answers prompts from a script and records them.
type fakePrompter struct {
	terminal bool
	answers  []string
	prompts  []string
}

func (f *fakePrompter) Terminal() bool { return f.terminal }

func (f *fakePrompter) Secret(prompt string) (string, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return "", errors.New("fakePrompter: no more answers")
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return a, nil
}

// helperErr asserts err is a *helper.Error of kind k and returns it.
func helperErr(t *testing.T, err error, k helper.Kind) *helper.Error {
	t.Helper()
	var he *helper.Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is not a *helper.Error", err, err)
	}
	if he.Kind != k {
		t.Fatalf("kind = %v, want %v (error: %v)", he.Kind, k, err)
	}
	return he
}

// noLeak fails if any secret appears in the error text.
func noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}

func mustCreate(t *testing.T, k Key, pass string) *Identity {
	t.Helper()
	id, err := k.Create(pass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t)
	id := mustCreate(t, k, "correct horse")

	for _, tc := range []struct {
		name  string
		check func(t *testing.T, ct []byte) []byte
	}{
		{"binary", func(t *testing.T, ct []byte) []byte { return ct }},
		{"armored", func(t *testing.T, ct []byte) []byte {
			var buf bytes.Buffer
			w := armor.NewWriter(&buf)
			if _, err := w.Write(ct); err != nil {
				t.Fatal(err)
			}
			w.Close()
			return buf.Bytes()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := []byte("refresh-token-" + tc.name)
			ct, err := k.Seal(secret)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(ct, secret) {
				t.Fatal("ciphertext contains the plaintext")
			}
			// With the identity from Create and from an unlock.
			got, err := id.Open(tc.check(t, ct))
			if err != nil || string(got) != string(secret) {
				t.Fatalf("Open = %q, %v", got, err)
			}
			id2, err := k.Unlock("  correct horse\n", testOpts()) // white space ignored
			if err != nil {
				t.Fatal(err)
			}
			got, err = id2.Open(ct)
			if err != nil || string(got) != string(secret) {
				t.Fatalf("Open after Unlock = %q, %v", got, err)
			}
		})
	}

	fi, err := os.Stat(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(k.Path))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v, want 0700", di.Mode().Perm())
	}
	data, _ := os.ReadFile(k.Path)
	if bytes.Contains(data, []byte("AGE-SECRET-KEY-")) {
		t.Error("passphrase-protected key file contains the identity in clear")
	}
	kf, err := ParseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if kf.Recipient != id.Recipient() || kf.Protection != Passphrase || !kf.Created.Equal(t0) || kf.Version != 1 {
		t.Errorf("key file = %+v", kf)
	}
}

// The identity field is a plain age file: the age tool (here its library)
// decrypts it with the passphrase alone.
func TestKeyFileIsPlainAge(t *testing.T) {
	k := testKey(t)
	id := mustCreate(t, k, "pw")
	kf, err := k.Load()
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := age.NewScryptIdentity("pw")
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(kf.Identity)), sid)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	x, err := age.ParseX25519Identity(strings.TrimSpace(buf.String()))
	if err != nil || x.Recipient().String() != id.Recipient() {
		t.Fatalf("identity in key file: %v", err)
	}
}

func TestIdentityNeverFormatsSecret(t *testing.T) {
	k := testKey(t)
	id, err := k.CreatePlaintext(testOpts())
	if err != nil {
		t.Fatal(err)
	}
	kf, err := k.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprint(id), fmt.Sprintf("%v %+v %#v %s", id, id, id, id),
		fmt.Sprint(kf), fmt.Sprintf("%v %+v %#v %s", kf, kf, kf, kf),
	} {
		if strings.Contains(s, "AGE-SECRET-KEY") {
			t.Errorf("formatted value leaks the identity: %s", s)
		}
	}
	if !strings.Contains(fmt.Sprint(id), id.Recipient()) {
		t.Errorf("String() = %s, want the recipient", id)
	}
}

func TestCreateRefuses(t *testing.T) {
	k := testKey(t)
	_, err := k.Create("  ", testOpts())
	he := helperErr(t, err, helper.KindUsage)
	if !strings.Contains(he.Fix, "plaintext = true") {
		t.Errorf("fix %q does not mention plaintext mode", he.Fix)
	}
	if ok, _ := k.Exists(); ok {
		t.Fatal("empty passphrase created a key file")
	}

	mustCreate(t, k, "first")
	before, _ := os.ReadFile(k.Path)
	_, err = k.Create("second", testOpts())
	he = helperErr(t, err, helper.KindUsage)
	if !strings.Contains(he.Fix, "tokenhelper logout --forget -p cms") {
		t.Errorf("fix = %q", he.Fix)
	}
	if _, err := k.CreatePlaintext(testOpts()); !helper.IsKind(err, helper.KindUsage) {
		t.Errorf("CreatePlaintext over an existing key: %v", err)
	}
	after, _ := os.ReadFile(k.Path)
	if !bytes.Equal(before, after) {
		t.Error("existing key file was overwritten")
	}

	if _, err := k.Create("x", KeyOptions{WorkFactor: 25}); !helper.IsKind(err, helper.KindInternal) {
		t.Errorf("work factor above the maximum: %v", err)
	}
}

// snapshot records content and modification time of files.
func snapshot(t *testing.T, paths ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		m[p] = fmt.Sprintf("%x|%v|%v", b, fi.ModTime().UnixNano(), fi.Mode())
	}
	return m
}

func TestWrongPassphrase(t *testing.T) {
	k := testKey(t)
	mustCreate(t, k, "right")
	ct, err := k.Seal([]byte("rt"))
	if err != nil {
		t.Fatal(err)
	}
	sealed := filepath.Join(filepath.Dir(k.Path), "refresh.age")
	if err := os.WriteFile(sealed, ct, 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, k.Path, sealed)
	check := func(t *testing.T, err error) *helper.Error {
		t.Helper()
		he := helperErr(t, err, helper.KindDenied)
		if !strings.Contains(he.Msg, "wrong passphrase for profile cms") {
			t.Errorf("msg = %q", he.Msg)
		}
		if !strings.Contains(he.Fix, "tokenhelper logout --forget -p cms, then register again") {
			t.Errorf("fix = %q", he.Fix)
		}
		noLeak(t, err, "wrong1", "wrong2", "wrong3", "from-env")
		return he
	}

	t.Run("direct", func(t *testing.T) {
		_, err := k.Unlock("wrong1", testOpts())
		he := check(t, err)
		if !strings.HasPrefix(he.Fix, "try again") {
			t.Errorf("fix = %q", he.Fix)
		}
	})
	t.Run("prompt three times", func(t *testing.T) {
		p := &fakePrompter{terminal: true, answers: []string{"wrong1", "wrong2", "wrong3", "right"}}
		cache := NewMemoryCache(&fakeClock{now: t0})
		u := &Unlocker{Prompter: p, Cache: cache, Options: testOpts()}
		_, err := u.Open(context.Background(), k)
		_ = check(t, err)
		if len(p.prompts) != MaxAttempts {
			t.Errorf("prompted %d times, want %d: %q", len(p.prompts), MaxAttempts, p.prompts)
		}
		if !strings.Contains(p.prompts[1], "Wrong passphrase, try again (2 of 3)") {
			t.Errorf("second prompt = %q", p.prompts[1])
		}
		if cache.Len() != 0 {
			t.Error("a failed unlock was cached")
		}
	})
	t.Run("from env", func(t *testing.T) {
		u := &Unlocker{Sources: Sources{Env: "TH_PASS", Environ: []string{"TH_PASS=from-env"}}, Options: testOpts(),
			Prompter: &fakePrompter{terminal: true, answers: []string{"right"}}}
		_, err := u.Open(context.Background(), k)
		he := check(t, err)
		if !strings.Contains(he.Msg, "passphrase_env TH_PASS") || !strings.Contains(he.Fix, "correct passphrase_env TH_PASS") {
			t.Errorf("error does not name the source: %v", he)
		}
	})
	if after := snapshot(t, k.Path, sealed); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("files changed after wrong passphrases")
	}
	// And the right one still works.
	if _, err := k.Unlock("right", testOpts()); err != nil {
		t.Fatal(err)
	}
}

func TestPromptSuccessAfterRetry(t *testing.T) {
	k := testKey(t)
	mustCreate(t, k, "right")
	p := &fakePrompter{terminal: true, answers: []string{"nope", " right\t"}} // white space ignored
	u := &Unlocker{Prompter: p, Options: testOpts()}
	id, err := u.Open(context.Background(), k)
	if err != nil || id == nil {
		t.Fatal(err)
	}
	if len(p.prompts) != 2 || p.prompts[0] != "Passphrase for profile cms: " {
		t.Errorf("prompts = %q", p.prompts)
	}
}

func TestPlaintextMode(t *testing.T) {
	k := testKey(t)
	var warnings []string
	opts := testOpts()
	opts.Warn = func(m string) { warnings = append(warnings, m) }
	u := &Unlocker{Options: opts}
	id, err := u.Create(context.Background(), k, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "UNENCRYPTED") || !strings.Contains(warnings[0], "profile cms") {
		t.Errorf("warnings = %q", warnings)
	}
	data, _ := os.ReadFile(k.Path)
	if !bytes.Contains(data, []byte(`"protection": "plaintext"`)) {
		t.Errorf("key file not marked plaintext:\n%s", data)
	}
	ct, _ := k.Seal([]byte("client-secret"))
	// No sources, no prompt, no cache: a plaintext key still opens.
	id2, err := u.Open(context.Background(), k)
	if err != nil || id2.Recipient() != id.Recipient() {
		t.Fatalf("Open plaintext: %v", err)
	}
	if pt, err := id2.Open(ct); err != nil || string(pt) != "client-secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}

	// Protect it, then make it plaintext again; the secret survives both.
	if err := k.SetPassphrase(id2, "now-protected", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Open(context.Background(), k); !helper.IsKind(err, helper.KindLoginNeeded) {
		t.Fatalf("protected key opened without passphrase: %v", err)
	}
	id3, err := k.Unlock("now-protected", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetPlaintext(id3, opts); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 {
		t.Errorf("SetPlaintext did not warn: %q", warnings)
	}
	id4, err := u.Open(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := id4.Open(ct); err != nil || string(pt) != "client-secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
}

func TestSetPassphrase(t *testing.T) {
	k := testKey(t)
	id := mustCreate(t, k, "old")
	ct, _ := k.Seal([]byte("rt"))
	if err := k.SetPassphrase(id, "", testOpts()); !helper.IsKind(err, helper.KindUsage) {
		t.Errorf("empty new passphrase: %v", err)
	}
	other, err := Key{Path: filepath.Join(t.TempDir(), "k"), Profile: "x"}.CreatePlaintext(testOpts())
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, k.Path)
	if err := k.SetPassphrase(other, "new", testOpts()); !helper.IsKind(err, helper.KindInternal) {
		t.Errorf("foreign identity accepted: %v", err)
	}
	if fmt.Sprint(snapshot(t, k.Path)) != fmt.Sprint(before) {
		t.Error("key file changed by a refused SetPassphrase")
	}
	if err := k.SetPassphrase(id, "new", testOpts()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unlock("old", testOpts()); !helper.IsKind(err, helper.KindDenied) {
		t.Errorf("old passphrase: %v", err)
	}
	id2, err := k.Unlock("new", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := id2.Open(ct); err != nil || string(pt) != "rt" {
		t.Fatalf("secret after passphrase change: %q, %v", pt, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(k.Path))
	if len(ents) != 1 {
		t.Errorf("left-over files: %v", ents)
	}
}

func TestLoadErrors(t *testing.T) {
	k := testKey(t)
	_, err := k.Seal([]byte("x"))
	he := helperErr(t, err, helper.KindLoginNeeded)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(he.Fix, "tokenhelper login -p cms") {
		t.Errorf("missing key: %v", err)
	}

	mustCreate(t, k, "pw")
	if err := os.Chmod(k.Path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = k.Unlock("pw", testOpts())
	he = helperErr(t, err, helper.KindUnsafe)
	if he.Fix != "chmod 600 "+k.Path {
		t.Errorf("fix = %q", he.Fix)
	}
	if err := os.Chmod(k.Path, 0o600); err != nil {
		t.Fatal(err)
	}

	good, _ := os.ReadFile(k.Path)
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "empty"},
		{"not json", "hello", "not valid JSON"},
		{"trailing", string(good) + "{}", "data after"},
		{"newer", strings.Replace(string(good), `"version": 1`, `"version": 7`, 1), "newer tokenhelper"},
		{"foreign format", strings.Replace(string(good), KeyFileFormat, "other", 1), "not a tokenhelper key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(k.Path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := k.Unlock("pw", testOpts())
			he := helperErr(t, err, helper.KindInternal)
			if !strings.Contains(he.Msg, tc.want) || !strings.Contains(he.Fix, "logout --forget -p cms") {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestMaxWorkFactor(t *testing.T) {
	k := testKey(t)
	if _, err := k.Create("pw", KeyOptions{WorkFactor: 12}); err != nil {
		t.Fatal(err)
	}
	_, err := k.Unlock("pw", KeyOptions{MaxWorkFactor: 11})
	he := helperErr(t, err, helper.KindInternal)
	if !strings.Contains(he.Msg, "work factor 12 is above the accepted maximum 11") {
		t.Errorf("msg = %q", he.Msg)
	}
}

func TestOpenErrors(t *testing.T) {
	k := testKey(t)
	id := mustCreate(t, k, "pw")
	other := Key{Path: filepath.Join(t.TempDir(), "k"), Profile: "atlas"}
	if _, err := other.CreatePlaintext(testOpts()); err != nil {
		t.Fatal(err)
	}
	ct, _ := other.Seal([]byte("theirs"))
	_, err := id.Open(ct)
	he := helperErr(t, err, helper.KindLoginNeeded)
	if !strings.Contains(he.Fix, "tokenhelper login -p cms") {
		t.Errorf("fix = %q", he.Fix)
	}
	mine, _ := k.Seal([]byte("mine"))
	damaged := bytes.Clone(mine)
	damaged[len(damaged)-3] ^= 0xff
	for _, ct := range [][]byte{nil, []byte("garbage"), mine[:len(mine)/2], damaged, []byte(armor.Header + "\nnot base64\n")} {
		_, err := id.Open(ct)
		_ = helperErr(t, err, helper.KindInternal)
	}
	var nilID *Identity
	if _, err := nilID.Open(mine); err == nil {
		t.Error("nil identity opened a secret")
	}
}

func TestForget(t *testing.T) {
	k := testKey(t)
	cache := NewMemoryCache(&fakeClock{now: t0})
	u := &Unlocker{Cache: cache, Prompter: &fakePrompter{terminal: true, answers: []string{"pw"}}, Options: testOpts()}
	mustCreate(t, k, "pw")
	if _, err := u.Open(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if cache.Len() != 1 {
		t.Fatal("not cached")
	}
	// No passphrase needed, even for a corrupt key file.
	if err := os.WriteFile(k.Path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Forget(k); err != nil {
		t.Fatal(err)
	}
	if ok, _ := k.Exists(); ok || cache.Len() != 0 {
		t.Errorf("after Forget: file exists %v, cache entries %d", ok, cache.Len())
	}
	if err := u.Forget(k); err != nil {
		t.Errorf("second Forget: %v", err)
	}
	// And a new key can be created at once.
	mustCreate(t, k, "new")
}

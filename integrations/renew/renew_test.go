package renew

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

var t0 = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// mint makes a JWT issued at iat that expires after life (unverified here:
// the renewer only reads iat and exp).
func mint(t testing.TB, iat time.Time, life time.Duration, jti string) *helper.Token {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "iat": iat.Unix(), "exp": iat.Add(life).Unix(), "jti": jti,
	}).SignedString([]byte("test-key-test-key-test-key-12345"))
	if err != nil {
		t.Fatal(err)
	}
	return &helper.Token{AccessToken: s, Expiry: time.Unix(iat.Add(life).Unix(), 0)}
}

// fakeSource mints tokens at the fake clock's time, or fails while err is
// set. It records the minValid of each call.
type fakeSource struct {
	t     testing.TB
	clock *fakeClock
	life  time.Duration

	mu    sync.Mutex
	err   error
	calls []time.Duration
	at    []time.Time
	n     int
}

func (f *fakeSource) source(ctx context.Context, minValid time.Duration) (*helper.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, minValid)
	f.at = append(f.at, f.clock.Now())
	if f.err != nil {
		return nil, f.err
	}
	f.n++
	tok := mint(f.t, f.clock.Now(), f.life, "jti-"+string(rune('a'+f.n%26)))
	if !tok.ValidBeyond(f.clock.Now(), minValid) {
		return nil, helper.Errorf(helper.KindNoToken, "token too short for %s", minValid)
	}
	return tok, nil
}

func (f *fakeSource) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeSource) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.at)
}

func (f *fakeSource) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type logRec struct {
	mu   sync.Mutex
	info []string
	warn []string
}

func (l *logRec) renewer(r *Renewer) *Renewer {
	r.Info = func(s string) { l.mu.Lock(); l.info = append(l.info, s); l.mu.Unlock() }
	r.Warn = func(s string) { l.mu.Lock(); l.warn = append(l.warn, s); l.mu.Unlock() }
	return r
}

func (l *logRec) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.warn)
}

func (l *logRec) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(slices.Clone(l.info), l.warn...)
}

func testEnv(t *testing.T) discovery.Env {
	return discovery.Env{UID: os.Geteuid(), TmpDir: t.TempDir()}
}

func fileToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
	}
	return strings.TrimSuffix(string(b), "\n")
}

func expiryOf(t *testing.T, tok string) time.Time {
	t.Helper()
	info, err := jwtinfo.Parse(tok)
	if err != nil || !info.IsJWT {
		t.Fatalf("not a JWT in the file: %v", err)
	}
	return info.Expiry
}

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		iat      time.Time // of the token
		life     time.Duration
		seen     time.Time // when the renewer got it
		minValid time.Duration
		jitter   float64 // the random draw
		want     time.Time
	}{
		{"a third of the lifetime", t0, 30 * time.Minute, t0, 0, 0, t0.Add(20 * time.Minute)},
		{"full jitter", t0, 30 * time.Minute, t0, 0, 1, t0.Add(17 * time.Minute)},
		{"min valid wins", t0, 30 * time.Minute, t0, 15 * time.Minute, 0, t0.Add(15 * time.Minute)},
		{"fraction wins over small min valid", t0, 60 * time.Minute, t0, 5 * time.Minute, 0, t0.Add(40 * time.Minute)},
		{"cached token: lifetime from iat", t0, 30 * time.Minute, t0.Add(25 * time.Minute), 0, 0, t0.Add(20 * time.Minute)},
		{"iat in the future: lifetime from what was left", t0.Add(time.Hour), 30 * time.Minute, t0, 0, 0, t0.Add(time.Hour + 20*time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Renewer{}
			s := r.newState(&Output{Path: "/x", MinValid: tc.minValid})
			r.adopt(s, mint(t, tc.iat, tc.life, "j"), tc.seen)
			if tc.name == "iat in the future: lifetime from what was left" {
				// iat after the time seen (+1 min skew) is implausible:
				// the lifetime is what was left when seen (90 min).
				tc.want = tc.iat.Add(tc.life).Add(-30 * time.Minute)
			}
			if got := r.renewAt(s, tc.jitter); !got.Equal(tc.want) {
				t.Fatalf("renewAt = %s, want %s", got.Format(time.TimeOnly), tc.want.Format(time.TimeOnly))
			}
		})
	}
}

func TestOnce(t *testing.T) {
	clk := newFakeClock(t0)
	src := &fakeSource{t: t, clock: clk, life: 30 * time.Minute}
	env := testEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "token")
	var logs logRec
	r := logs.renewer(&Renewer{Env: env, Clock: clk, Jitter: -1})
	outs := []Output{{Name: `profile "p"`, Path: path, Source: src.source}}

	// Missing file (and directory): written, 0600.
	res := r.Once(context.Background(), outs, OnceOptions{})
	if len(res) != 1 || !res[0].Renewed || res[0].Err != nil || res[0].Path != path {
		t.Fatalf("first run: %+v", res)
	}
	first := fileToken(t, path)
	if first != res[0].Token.AccessToken {
		t.Fatal("the file does not hold the token reported")
	}

	// Still fresh: left alone, no source call.
	clk.set(t0.Add(10 * time.Minute))
	res = r.Once(context.Background(), outs, OnceOptions{})
	if res[0].Renewed || res[0].Err != nil || src.count() != 1 || fileToken(t, path) != first {
		t.Fatalf("fresh file renewed: %+v, %d calls", res, src.count())
	}
	// Due before the next cron run (within 10m): renewed now.
	res = r.Once(context.Background(), outs, OnceOptions{Within: 10 * time.Minute})
	if !res[0].Renewed || fileToken(t, path) == first {
		t.Fatalf("token due within the interval not renewed: %+v", res)
	}
	// The renewal asked for more than the threshold (10m).
	if got := src.calls[len(src.calls)-1]; got < 10*time.Minute {
		t.Fatalf("renewal asked for minValid %s, want ≥ 10m", got)
	}
	second := fileToken(t, path)
	// Force.
	res = r.Once(context.Background(), outs, OnceOptions{Force: true})
	if !res[0].Renewed || src.count() != 3 {
		t.Fatalf("force: %+v", res)
	}
	_ = second

	// Failure: the file keeps its (valid) token, the error is reported.
	good := fileToken(t, path)
	src.setErr(helper.Errorf(helper.KindUnavailable, "provider down"))
	clk.set(t0.Add(time.Hour)) // the token expired
	res = r.Once(context.Background(), outs, OnceOptions{})
	if res[0].Renewed || !helper.IsKind(res[0].Err, helper.KindUnavailable) {
		t.Fatalf("failure: %+v", res)
	}
	if fileToken(t, path) != good {
		t.Fatal("a failed renewal changed the file")
	}
	for _, l := range logs.all() {
		if strings.Contains(l, good) || strings.Contains(l, first) {
			t.Fatalf("token in log line %q", l)
		}
	}
}

func TestOnceRefusesForeignFile(t *testing.T) {
	// As root a file of uid 0 is ours too: the other owner is simulated
	// with the discovery UID.
	clk := newFakeClock(t0)
	src := &fakeSource{t: t, clock: clk, life: 30 * time.Minute}
	env := testEnv(t)
	env.UID = os.Geteuid() + 4242
	dir := t.TempDir()
	link := filepath.Join(dir, "token")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	r := &Renewer{Env: env, Clock: clk}
	res := r.Once(context.Background(), []Output{{Path: link, Source: src.source}}, OnceOptions{})
	if res[0].Err == nil || !helper.IsKind(res[0].Err, helper.KindUnsafe) {
		t.Fatalf("wrote through a symbolic link of another user: %+v", res[0])
	}
	if _, err := os.Stat(filepath.Join(dir, "elsewhere")); err == nil {
		t.Fatal("the link target was created")
	}
}

// runRenewer starts Run in a goroutine and returns a stop function that
// waits for it to return.
func runRenewer(t *testing.T, r *Renewer, outs []Output) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, outs) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10 s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestRunAcrossLifetimes drives the daemon loop through ten lifetimes on
// the fake clock: at every wake-up the file holds a token valid beyond the
// threshold's lower bound, and renewals happen once per lifetime, not more.
func TestRunAcrossLifetimes(t *testing.T) {
	clk := newFakeClock(t0)
	life := 30 * time.Minute
	src := &fakeSource{t: t, clock: clk, life: life}
	path := filepath.Join(t.TempDir(), "bt")
	var logs logRec
	r := logs.renewer(&Renewer{Env: testEnv(t), Clock: clk})
	runRenewer(t, r, []Output{{Name: "test", Path: path, Source: src.source}})

	end := t0.Add(10 * life)
	for clk.Now().Before(end) {
		at := clk.waitTimer(t)
		if at.Sub(clk.Now()) > DefaultMaxSleep {
			t.Fatalf("slept %s, longer than MaxSleep", at.Sub(clk.Now()))
		}
		tok := fileToken(t, path)
		left := expiryOf(t, tok).Sub(clk.Now())
		// Renewed at a third of the lifetime at the latest, less the
		// one-second rounding of exp.
		if left < life/3-time.Second {
			t.Fatalf("at %s the file's token has only %s left", clk.Now().Format(time.TimeOnly), left)
		}
		clk.set(at)
	}
	// One initial acquisition plus one per ~2/3..0.57 lifetime.
	if n := src.count(); n < 15 || n > 19 {
		t.Fatalf("%d source calls over 10 lifetimes, want 15..19", n)
	}
	if w := logs.warnings(); len(w) != 0 {
		t.Fatalf("warnings without failures: %q", w)
	}
}

// TestRunProviderDown: the provider fails for longer than the token lives.
// The file keeps the old token (never removed), retries back off, one line
// is logged per streak plus the expiry and the recovery, and the renewer
// recovers as soon as the provider does.
func TestRunProviderDown(t *testing.T) {
	clk := newFakeClock(t0)
	life := 30 * time.Minute
	src := &fakeSource{t: t, clock: clk, life: life}
	path := filepath.Join(t.TempDir(), "bt")
	var logs logRec
	r := logs.renewer(&Renewer{Env: testEnv(t), Clock: clk, Jitter: -1, Rand: func() float64 { return 0 }})
	runRenewer(t, r, []Output{{Name: "test", Path: path, Source: src.source}})

	at := clk.waitTimer(t) // first token written; asleep
	first := fileToken(t, path)
	src.setErr(helper.Errorf(helper.KindUnavailable, "the provider is down"))
	for clk.Now().Before(t0.Add(2 * life)) {
		clk.set(at)
		at = clk.waitTimer(t)
		if fileToken(t, path) != first {
			t.Fatal("the file changed while the provider was down")
		}
	}
	times := src.times()
	if want := t0.Add(20 * time.Minute); !times[1].Equal(want) {
		t.Fatalf("first renewal at %s, want %s", times[1].Format(time.TimeOnly), want.Format(time.TimeOnly))
	}
	var gaps []time.Duration
	for i := 2; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	// Backoff: 5s, 10s, 20s, ... capped by half the time left while the
	// token is valid, then growing to MaxRetry.
	if gaps[0] != 5*time.Second || gaps[1] != 10*time.Second || gaps[2] != 20*time.Second {
		t.Fatalf("backoff %v", gaps[:3])
	}
	for _, g := range gaps {
		if g > DefaultMaxRetry || g < DefaultMinRetry {
			t.Fatalf("retry gap %s outside [MinRetry, MaxRetry]: %v", g, gaps)
		}
	}
	if last := gaps[len(gaps)-1]; last != DefaultMaxRetry {
		t.Fatalf("retries did not back off to MaxRetry: %v", gaps)
	}
	w := logs.warnings()
	if len(w) != 2 || !strings.Contains(w[0], "cannot renew "+path) || !strings.Contains(w[0], "the provider is down") ||
		!strings.Contains(w[1], "expired") {
		t.Fatalf("warnings: %q", w)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("the file was removed")
	}

	src.setErr(nil)
	for n := src.count(); src.count() == n; {
		clk.set(at)
		at = clk.waitTimer(t)
	}
	if tok := fileToken(t, path); tok == first || !expiryOf(t, tok).After(clk.Now().Add(life-2*time.Second)) {
		t.Fatalf("not recovered after the provider came back: %q %d", logs.all(), src.count())
	}
	if w := logs.warnings(); len(w) != 3 || !strings.Contains(w[2], "after") {
		t.Fatalf("recovery not logged: %q", w)
	}
}

func TestRunPermanentErrorWaitsLong(t *testing.T) {
	clk := newFakeClock(t0)
	src := &fakeSource{t: t, clock: clk, life: time.Hour}
	src.setErr(helper.LoginNeeded("p", "the session expired"))
	path := filepath.Join(t.TempDir(), "bt")
	var logs logRec
	r := logs.renewer(&Renewer{Env: testEnv(t), Clock: clk, Rand: func() float64 { return 0 }, EveryFailure: true})
	runRenewer(t, r, []Output{{Path: path, Source: src.source}})
	at := clk.waitTimer(t)
	if d := at.Sub(t0); d != DefaultMaxSleep {
		// MaxRetry (5m) is longer than MaxSleep: the loop wakes after
		// MaxSleep, finds nothing due, and sleeps again.
		t.Fatalf("first wake after %s, want MaxSleep", d)
	}
	for range 4 {
		clk.set(at)
		at = clk.waitTimer(t)
	}
	if n := src.count(); n != 1 {
		t.Fatalf("%d attempts within 5 minutes for a login-needed error, want 1", n)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file was written without a token")
	}
	w := logs.warnings()
	if len(w) != 1 || !strings.Contains(w[0], "tokenhelper login -p p") || !strings.Contains(w[0], "no valid token") {
		t.Fatalf("warnings: %q", w)
	}
}

// TestRunRestoresAndAdopts: a file removed behind the daemon's back is
// written again at the next look; a newer token someone else wrote there
// is kept.
func TestRunRestoresAndAdopts(t *testing.T) {
	clk := newFakeClock(t0)
	src := &fakeSource{t: t, clock: clk, life: time.Hour}
	path := filepath.Join(t.TempDir(), "bt")
	var logs logRec
	r := logs.renewer(&Renewer{Env: testEnv(t), Clock: clk})
	runRenewer(t, r, []Output{{Path: path, Source: src.source}})

	at := clk.waitTimer(t)
	tok := fileToken(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clk.set(at)
	at = clk.waitTimer(t)
	if fileToken(t, path) != tok {
		t.Fatal("removed file not restored with the current token")
	}
	newer := mint(t, clk.Now(), 2*time.Hour, "other")
	if _, err := discovery.Write(testEnv(t), newer.AccessToken, discovery.WriteOptions{Path: path}); err != nil {
		t.Fatal(err)
	}
	clk.set(at)
	at = clk.waitTimer(t)
	if fileToken(t, path) != newer.AccessToken {
		t.Fatal("a newer token written by someone else was replaced")
	}
	if at.Sub(clk.Now()) != DefaultMaxSleep {
		t.Fatalf("woke after %s", at.Sub(clk.Now()))
	}
	if src.count() != 1 {
		t.Fatalf("%d source calls, want 1", src.count())
	}
}

// TestRunCurrent: exec hands over the token it wrote; no source call until
// it is due.
func TestRunCurrent(t *testing.T) {
	clk := newFakeClock(t0)
	src := &fakeSource{t: t, clock: clk, life: time.Hour}
	path := filepath.Join(t.TempDir(), "bt")
	cur := mint(t, t0, time.Hour, "cur")
	if _, err := discovery.Write(testEnv(t), cur.AccessToken, discovery.WriteOptions{Path: path}); err != nil {
		t.Fatal(err)
	}
	r := &Renewer{Env: testEnv(t), Clock: clk, Jitter: -1}
	runRenewer(t, r, []Output{{Path: path, Source: src.source, Current: cur}})
	at := clk.waitTimer(t)
	for at.Before(t0.Add(40 * time.Minute)) {
		clk.set(at)
		at = clk.waitTimer(t)
		if src.count() != 0 {
			t.Fatalf("source called at %s, before the token was due", clk.Now().Format(time.TimeOnly))
		}
	}
	clk.set(at)
	clk.waitTimer(t)
	if src.count() != 1 || fileToken(t, path) == cur.AccessToken {
		t.Fatalf("not renewed when due: %d calls", src.count())
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	src := &blockingSource{started: make(chan struct{})}
	r := &Renewer{Env: testEnv(t)}
	stop := runRenewer(t, r, []Output{{Path: filepath.Join(t.TempDir(), "bt"), Source: src.source}})
	<-src.started
	stop() // fails the test if Run does not return
}

type blockingSource struct{ started chan struct{} }

func (b *blockingSource) source(ctx context.Context, _ time.Duration) (*helper.Token, error) {
	close(b.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestJWTExpiryWins: a source that reports an expiry later than the JWT's
// exp (expires_in counted from before the request; exp in whole seconds)
// is scheduled by exp, which is what a storage checks.
func TestJWTExpiryWins(t *testing.T) {
	r := &Renewer{Jitter: -1}
	s := r.newState(&Output{Path: "/x"})
	tok := mint(t, t0, 30*time.Minute, "j")
	reported := *tok
	reported.Expiry = tok.Expiry.Add(900 * time.Millisecond)
	r.adopt(s, &reported, t0)
	if !s.tok.Expiry.Equal(tok.Expiry) {
		t.Fatalf("expiry %s, want the JWT's %s", s.tok.Expiry, tok.Expiry)
	}
	if reported.Expiry.Equal(tok.Expiry) {
		t.Fatal("adopt changed the caller's token")
	}
	// An earlier reported expiry is kept.
	early := *tok
	early.Expiry = tok.Expiry.Add(-time.Minute)
	r.adopt(s, &early, t0)
	if !s.tok.Expiry.Equal(early.Expiry) {
		t.Fatalf("expiry %s, want the earlier reported %s", s.tok.Expiry, early.Expiry)
	}
}

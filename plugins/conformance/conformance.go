// Package conformance is the test suite every tokenhelper backend passes,
// in the manner of rclone's fstests: built-ins in-process and isolated in
// a process of their own over go-plugin, external plugins through the
// real tokenhelper-pluginhost and their built executable.
//
// A backend's test describes the backend and the world around it in a
// Harness and calls Run (any backend), RunBuiltin (a built-in: in-process
// and isolated) or RunPlugin (an external plugin executable):
//
//	func TestConformance(t *testing.T) {
//		conformance.RunBuiltin(t, "file", conformance.Harness{
//			Profile:  config.Profile{Backend: "file", TokenFile: path},
//			Scopes:   []string{"storage.read:/data"},
//			Lifetime: time.Hour,
//			Break:    func(t *testing.T) (helper.Kind, func()) { ...remove the file... },
//		})
//	}
//
// The suite checks: a token for the default, a scoped and an audience
// request (a JWT's claims must cover what was asked); min-valid is
// respected (never a token expiring within it); Force; the context's
// deadline is honoured when the source stalls; errors are typed
// *helper.Error values of the expected kind (a lost session is
// KindLoginNeeded on the caller's side, whatever process it came from)
// and never contain token material; Status, when implemented; concurrent
// calls.
//
// Out-of-process runs need the executables; Binaries builds them once
// per test process (call Main from TestMain to remove them afterwards).
package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/file"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Harness describes a backend under test and the world around it.
type Harness struct {
	// Profile is the profile the backend serves. The suite sets Name if
	// empty; requests carry the scopes and audiences under test.
	Profile config.Profile
	// New opens the backend of profile p. RunBuiltin and RunPlugin fill
	// it; Run requires it.
	New func(t *testing.T, p *config.Profile) helper.Backend
	// Env is added to the process environment for the backend (and for
	// out-of-process runs, for the plugin): OIDC_SOCK, PATH, ...
	Env map[string]string
	// Deps are a built-in's dependencies (RunBuiltin); LookupEnv and
	// Environ default to the process environment plus Env, Now to
	// time.Now.
	Deps plugins.Deps

	// Scopes the backend can grant; each is requested alone. Empty: the
	// scoped test is skipped.
	Scopes []string
	// Audiences the backend can put into a token; empty: skipped.
	Audiences []string
	// Lifetime of a fresh token; a min-valid beyond it must fail. 0: the
	// test uses 30 days.
	Lifetime time.Duration
	// Renews says Force yields a token other than the previous one.
	Renews bool
	// Break, if set, makes the world need a person (session gone, file
	// removed, command exiting "log in"): it returns the kind the backend
	// must then fail with and a function that restores the world.
	Break func(t *testing.T) (want helper.Kind, restore func())
	// Stall, if set, makes the backend's source hang (a stalled server, a
	// command that sleeps) until the returned function is called.
	Stall func(t *testing.T) (restore func())
	// Concurrency is the number of simultaneous calls (default 8).
	Concurrency int
	// ShortTokens, when set, is why the backend may hand out a token that
	// expires within the request's min-valid (a known gap: tokenhelper's
	// CLI refuses such a token itself). The MinValid test is then skipped
	// with this reason, so the gap stays visible in the test output.
	ShortTokens string
	// DeadlineSlack is how long after a deadline a call may still take to
	// return (default 3 s: an isolated backend's plugin is killed and
	// reaped in that time).
	DeadlineSlack time.Duration
}

func (h *Harness) defaults() {
	if h.Profile.Name == "" {
		h.Profile.Name = "conformance"
	}
	if h.Lifetime <= 0 {
		h.Lifetime = 30 * 24 * time.Hour
	}
	if h.Concurrency <= 0 {
		h.Concurrency = 8
	}
	if h.DeadlineSlack <= 0 {
		h.DeadlineSlack = 3 * time.Second
	}
}

// Environ is the process environment with env added (env wins).
func Environ(env map[string]string) []string {
	out := make([]string, 0, len(os.Environ())+len(env))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, over := env[k]; !over {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// LookupEnv looks a variable up in Environ(env).
func LookupEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
}

// Run runs the suite against h.New.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("conformance.Run: Harness.New is nil")
	}
	h.defaults()
	s := &suite{h: h}
	t.Run("Default", s.testDefault)
	t.Run("Scoped", s.testScoped)
	t.Run("Audience", s.testAudience)
	t.Run("MinValid", s.testMinValid)
	t.Run("Force", s.testForce)
	t.Run("ExpiredContext", s.testExpiredContext)
	t.Run("Deadline", s.testDeadline)
	t.Run("TypedErrors", s.testTypedErrors)
	t.Run("Status", s.testStatus)
	t.Run("Concurrent", s.testConcurrent)
}

// RunBuiltin runs the suite for the built-in backend name twice: in-process
// (as tokenhelper runs it) and isolated in its own process over go-plugin
// (isolate = true, through the real tokenhelper-pluginhost).
func RunBuiltin(t *testing.T, name string, h Harness) {
	t.Helper()
	if _, ok := plugins.Lookup(name); !ok {
		t.Fatalf("conformance.RunBuiltin: no built-in backend %q", name)
	}
	h.Profile.Backend = name
	for _, isolate := range []bool{false, true} {
		label := "InProcess"
		if isolate {
			label = "Isolated"
		}
		t.Run(label, func(t *testing.T) {
			h := h
			h.New = func(t *testing.T, p *config.Profile) helper.Backend {
				p.Isolate = isolate
				d := h.builtinDeps(t, isolate)
				be, _, err := plugins.Open(p, d)
				if err != nil {
					t.Fatalf("open %s: %v", name, err)
				}
				if isolate {
					if _, ok := be.(*remote.Backend); !ok {
						t.Fatalf("isolate = true opened %T, not an out-of-process backend", be)
					}
				}
				return be
			}
			Run(t, h)
		})
	}
}

func (h *Harness) builtinDeps(t *testing.T, isolate bool) plugins.Deps {
	d := h.Deps
	env := maps.Clone(h.Env)
	if env == nil {
		env = map[string]string{}
	}
	if isolate {
		env[remote.EnvHost] = Binaries(t).Host
	}
	if d.LookupEnv == nil || isolate {
		d.LookupEnv = LookupEnv(env)
	}
	if d.Environ == nil || isolate {
		d.Environ = func() []string { return Environ(env) }
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.TmpDir == "" {
		d.TmpDir = t.TempDir()
	}
	return d
}

// RunPlugin runs the suite for an external plugin executable through the
// real tokenhelper-pluginhost, as tokenhelper runs it.
func RunPlugin(t *testing.T, path string, h Harness) {
	t.Helper()
	if h.Profile.Backend == "" {
		h.Profile.Backend = strings.TrimPrefix(baseName(path), remote.ExecPrefix)
	}
	h.New = func(t *testing.T, p *config.Profile) helper.Backend {
		return remote.New(p, remote.Target{Name: p.Backend, Path: path}, remote.Config{
			HostPath: Binaries(t).Host,
			Env:      Environ(h.Env),
			Stderr:   testWriter{t},
			Host:     remote.Host{UID: os.Geteuid(), TmpDir: os.TempDir()},
		})
	}
	Run(t, h)
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// testWriter logs a plugin's messages to the test.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("plugin stderr: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type suite struct {
	h Harness

	mu   sync.Mutex
	seen []string // tokens handed out: no error may contain one
}

func (s *suite) profile() *config.Profile {
	p := s.h.Profile
	p.Scopes = slices.Clone(p.Scopes)
	p.Audiences = slices.Clone(p.Audiences)
	p.Options = maps.Clone(p.Options)
	return &p
}

func (s *suite) backend(t *testing.T) helper.Backend {
	t.Helper()
	return s.h.New(t, s.profile())
}

func (s *suite) request() helper.Request {
	return helper.Request{Profile: s.h.Profile.Name, MinValid: time.Minute}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// token gets a token and checks it against the request.
func (s *suite) token(t *testing.T, be helper.Backend, req helper.Request) *helper.Token {
	t.Helper()
	tok, err := be.Token(ctx(t), req)
	if err != nil {
		t.Fatalf("Token(%s): %v", describe(req), err)
	}
	s.checkToken(t, tok, req)
	return tok
}

func describe(req helper.Request) string {
	return fmt.Sprintf("scopes=%q audiences=%q min-valid=%s force=%v", req.Scopes, req.Audiences, req.MinValid, req.Force)
}

func (s *suite) checkToken(t *testing.T, tok *helper.Token, req helper.Request) {
	t.Helper()
	if tok == nil {
		t.Fatalf("Token(%s) returned neither a token nor an error", describe(req))
	}
	s.mu.Lock()
	s.seen = append(s.seen, tok.AccessToken)
	s.mu.Unlock()
	if !helper.IsB64Token(tok.AccessToken) {
		t.Fatalf("Token(%s): not an RFC 6750 b64token (%d bytes)", describe(req), len(tok.AccessToken))
	}
	now := time.Now()
	if !tok.ValidBeyond(now, req.MinValid) {
		t.Fatalf("Token(%s): handed out a token valid for only %s", describe(req), tok.ValidFor(now))
	}
	if strings.Contains(fmt.Sprint(tok)+fmt.Sprintf("%v %+v %#v", tok, tok, tok), tok.AccessToken) {
		t.Fatalf("formatting a Token prints the token")
	}
	info, err := jwtinfo.Parse(tok.AccessToken)
	if err != nil {
		t.Fatalf("Token(%s): %v", describe(req), err)
	}
	if !info.IsJWT {
		return
	}
	if !tok.Expiry.IsZero() && !info.Expiry.IsZero() && absDuration(tok.Expiry.Sub(info.Expiry)) > 2*time.Second {
		t.Errorf("Token.Expiry %s, but the JWT's exp is %s", tok.Expiry, info.Expiry)
	}
	for _, want := range req.Scopes {
		if !slices.ContainsFunc(info.Scopes, func(have string) bool { return file.ScopeCovers(have, want) }) {
			t.Errorf("asked for scope %q, the token has %q", want, info.Scopes)
		}
	}
	if len(req.Audiences) > 0 && !slices.ContainsFunc(info.Audiences, func(a string) bool {
		return a == jwtinfo.AnyAudience || slices.Contains(req.Audiences, strings.TrimSuffix(a, "/"))
	}) {
		t.Errorf("asked for audience %q, the token is for %q", req.Audiences, info.Audiences)
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// checkError requires a typed error without token material.
func (s *suite) checkError(t *testing.T, err error, what string) *helper.Error {
	t.Helper()
	var he *helper.Error
	if !errors.As(err, &he) {
		t.Fatalf("%s: error %T %q is not a *helper.Error", what, err, err)
	}
	if he.Msg == "" && he.Err == nil {
		t.Errorf("%s: error without a message", what)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tok := range s.seen {
		if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
			t.Fatalf("%s: the error message contains a token", what)
		}
	}
	return he
}

func (s *suite) testDefault(t *testing.T) {
	be := s.backend(t)
	s.token(t, be, s.request())
}

func (s *suite) testScoped(t *testing.T) {
	if len(s.h.Scopes) == 0 {
		t.Skip("the harness names no scopes")
	}
	be := s.backend(t)
	for _, sc := range s.h.Scopes {
		req := s.request()
		req.Scopes = []string{sc}
		s.token(t, be, req)
	}
}

func (s *suite) testAudience(t *testing.T) {
	if len(s.h.Audiences) == 0 {
		t.Skip("the harness names no audiences")
	}
	be := s.backend(t)
	for _, aud := range s.h.Audiences {
		req := s.request()
		req.Audiences = []string{aud}
		s.token(t, be, req)
	}
}

func (s *suite) testMinValid(t *testing.T) {
	if s.h.ShortTokens != "" {
		t.Skip("known gap: " + s.h.ShortTokens)
	}
	be := s.backend(t)
	s.token(t, be, s.request()) // a token exists: the refusal below is about min-valid
	req := s.request()
	req.MinValid = s.h.Lifetime + time.Hour
	tok, err := be.Token(ctx(t), req)
	if err == nil {
		s.checkToken(t, tok, req) // fails: no token lives that long
		return
	}
	he := s.checkError(t, err, "Token with min-valid beyond the lifetime")
	if he.Kind == helper.KindInternal {
		t.Errorf("min-valid beyond the lifetime: kind internal (%v); want what the user must do", err)
	}
}

func (s *suite) testForce(t *testing.T) {
	be := s.backend(t)
	first := s.token(t, be, s.request())
	req := s.request()
	req.Force = true
	second := s.token(t, be, req)
	if s.h.Renews && second.AccessToken == first.AccessToken {
		t.Errorf("Force returned the same token")
	}
}

func (s *suite) testExpiredContext(t *testing.T) {
	be := s.backend(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	tok, err := be.Token(c, s.request())
	if took := time.Since(start); took > s.h.DeadlineSlack {
		t.Fatalf("Token with a cancelled context took %s", took)
	}
	if err == nil {
		s.checkToken(t, tok, s.request())
		return
	}
	if errors.Is(err, context.Canceled) && !errors.As(err, new(*helper.Error)) {
		return // the CLI reports a bare context error as interrupted
	}
	_ = s.checkError(t, err, "Token with a cancelled context")
}

func (s *suite) testDeadline(t *testing.T) {
	if s.h.Stall == nil {
		t.Skip("the harness cannot stall the backend's source")
	}
	be := s.backend(t)
	restore := s.h.Stall(t)
	defer restore()
	const timeout = 1500 * time.Millisecond
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	tok, err := be.Token(c, s.request())
	took := time.Since(start)
	if err == nil {
		t.Fatalf("Token from a stalled source returned a token (%s)", tok)
	}
	if took > timeout+s.h.DeadlineSlack {
		t.Errorf("Token with a %s deadline returned after %s", timeout, took)
	}
	he := s.checkError(t, err, "Token from a stalled source")
	if he.Kind != helper.KindUnavailable {
		t.Errorf("stalled source: kind %s (%v), want %s", he.Kind, err, helper.KindUnavailable)
	}
	restore()
	s.token(t, s.backend(t), s.request())
}

func (s *suite) testTypedErrors(t *testing.T) {
	if s.h.Break == nil {
		t.Skip("the harness cannot break the backend's world")
	}
	be := s.backend(t)
	s.token(t, be, s.request())
	want, restore := s.h.Break(t)
	defer restore()
	req := s.request()
	tok, err := be.Token(ctx(t), req)
	if err == nil {
		t.Fatalf("Token after Break returned a token (%s)", tok)
	}
	he := s.checkError(t, err, "Token after Break")
	if he.Kind != want {
		t.Errorf("after Break: kind %s (%v), want %s", he.Kind, err, want)
	}
	if he.Fix == "" {
		t.Errorf("after Break: no Fix in %q; the user must be told what to do", err)
	}
	if want == helper.KindLoginNeeded && helper.ExitCode(err) != 4 {
		t.Errorf("login needed must exit 4, got %d", helper.ExitCode(err))
	}
	restore()
	s.token(t, s.backend(t), s.request())
}

func (s *suite) testStatus(t *testing.T) {
	be := s.backend(t)
	st, ok := be.(helper.Statuser)
	if !ok {
		t.Skip("the backend does not implement helper.Statuser")
	}
	got, err := st.Status(ctx(t))
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("the backend reports no status")
	}
	if err != nil {
		_ = s.checkError(t, err, "Status")
		t.Fatalf("Status: %v", err)
	}
	if !got.OK {
		t.Errorf("Status of a working backend: OK false (%q)", got.Lines)
	}
	if len(got.Lines) == 0 {
		t.Errorf("Status says nothing")
	}
	for _, l := range got.Lines {
		for _, tok := range s.seen {
			if len(tok) >= 8 && strings.Contains(l, tok) {
				t.Fatalf("Status shows a token")
			}
		}
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	be := s.backend(t)
	var wg sync.WaitGroup
	errs := make(chan error, s.h.Concurrency)
	toks := make(chan *helper.Token, s.h.Concurrency)
	for range s.h.Concurrency {
		wg.Go(func() {
			tok, err := be.Token(ctx(t), s.request())
			if err != nil {
				errs <- err
				return
			}
			toks <- tok
		})
	}
	wg.Wait()
	close(errs)
	close(toks)
	for err := range errs {
		t.Errorf("concurrent Token: %v", err)
	}
	for tok := range toks {
		s.checkToken(t, tok, s.request())
	}
}
